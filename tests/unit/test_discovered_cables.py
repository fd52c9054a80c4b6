"""Cables discovered on the nodes (by the play, or recorded in /etc/sparkctl/cabling.json) are input too.

A cable reaching a Spark the inventory does not list, or a record that is not `NODE:PORT NODE:PORT`,
is refused as bad input (exit code 2) naming where the cables came from, which entry, and what to do,
never a KeyError or ValueError from deep in the planner.
"""

from __future__ import annotations

from typing import Any

import pytest

from sparkctl import ssh
from sparkctl.ansible_bridge import parse_discovered, plan_from_hostvars
from sparkctl.errors import InputError
from sparkctl.inventory import load_inventory
from sparkctl.settings import read_settings
from sparkctl.verify import engine
from sparkctl.verify.expectations import read_expectations
from tests.unit.conftest import InventoryWriter

NODES = ["spark1", "spark2", "spark3"]
HOSTVARS = {name: {"ansible_host": f"192.168.1.{100 + i}", "sparkctl_topology": "direct"}
            for i, name in enumerate(NODES, start=1)}


@pytest.mark.parametrize(
    ("items", "key", "words"),
    [
        (["spark1:p0 spark9:p0"], "cables[0]", "reaches 'spark9', which is not in group sparks"),
        (["spark1:p0 spark2:p1", "spark3:p1 ghost:p0"], "cables[1]", "reaches 'ghost'"),
        (["spark1:p0"], "cables[0]", "is not a cable written NODE:PORT NODE:PORT"),
        (["spark1:p0 spark2:p0 spark3:p0"], "cables[0]", "is not a cable"),
        (["spark1-p0 spark2-p0"], "cables[0]", "is not a cable"),
        (["spark1:p7 spark2:p0"], "cables[0]", "is not a cable"),
        ([":p0 spark2:p0"], "cables[0]", "is not a cable"),
        ([42], "cables[0]", "42 is not a cable"),
        (["spark1:p0 spark1:p1"], "cables[0]", "connects spark1 to itself"),
        (["spark1:p0 spark2:p0", "spark1:p0 spark3:p1"], "cables[1]", "port spark1:p0 is in two cables"),
        ("spark1:p0 spark2:p0", "cables", "must be a list of cables"),
    ],
)
def test_bad_discovered_cables_are_input_errors(items: Any, key: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_discovered(items, NODES, "the record")
    error = caught.value
    assert error.exit_code == 2 and error.file == "the record" and error.key == key
    assert words in str(error) and error.fix


def test_the_same_cable_seen_from_both_ends_is_one_cable() -> None:
    cables = parse_discovered(["spark1:p0 spark2:p1", "spark2:p1 spark1:p0"], NODES)
    assert [c.name for c in cables] == ["spark1:p0-spark2:p1"]


def test_the_lookup_refuses_a_discovered_cable_to_a_spark_outside_the_inventory() -> None:
    with pytest.raises(InputError, match="sparkctl_discover_cables.*cables\\[0\\].*'spark9'"):
        plan_from_hostvars(NODES, HOSTVARS, "inv/hosts.yml", discovered=["spark1:p0 spark9:p1"])
    with pytest.raises(InputError, match="is not a cable"):
        plan_from_hostvars(NODES, HOSTVARS, "inv/hosts.yml", discovered=["spark1:p0spark2:p1"])


@pytest.mark.parametrize("cables", [["spark1:p0 spark9:p0"], ["spark1:p0 spark2:p0 extra"]])
def test_verify_link_refuses_a_bad_cabling_record_naming_the_node_that_holds_it(
    write_inventory: InventoryWriter, monkeypatch: pytest.MonkeyPatch, cables: list[str]
) -> None:
    inventory = load_inventory(write_inventory(2))
    record = {"cables": cables, "source": "discovered"}
    monkeypatch.setattr(engine.probes, "node_facts",
                        lambda target, devices: {"interfaces": {}, "cabling": record if target.name == "spark2" else None})
    targets = {name: ssh.SSHTarget(name, name) for name in ("spark1", "spark2")}
    verifier = engine.Verifier(read_settings(inventory), targets, read_expectations(inventory), engine.Options(),
                               lambda text: None)
    with pytest.raises(InputError) as caught:
        verifier.run()
    assert caught.value.file == "/etc/sparkctl/cabling.json on spark2" and caught.value.key == "cables[0]"
