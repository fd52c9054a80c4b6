"""verify-link's choice of links and its JSON schema, without any network."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from sparkctl.cluster import load_cluster
from sparkctl.errors import InputError
from sparkctl.node.node_facts import main as node_facts_main
from sparkctl.verify.engine import Report, select_links
from sparkctl.verify.verdicts import Check
from tests.unit.conftest import InventoryWriter


def test_links_default_to_every_planned_half(write_inventory: InventoryWriter) -> None:
    plan = load_cluster(write_inventory(3, sparkctl_topology="ring")).plan
    assert len(select_links(plan, [])) == 6


def test_links_filter_accepts_either_end_first(write_inventory: InventoryWriter) -> None:
    plan = load_cluster(write_inventory(3, sparkctl_topology="ring")).plan
    chosen = select_links(plan, ["spark2:p1-spark1:p0"])
    assert {link.cable for link in chosen} == {"spark1:p0-spark2:p1"} and len(chosen) == 2


@pytest.mark.parametrize("bad", ["spark1:p0", "spark1:p7-spark2:p0", "spark1:p1-spark2:p1"])
def test_links_filter_rejects_what_is_not_a_planned_cable(write_inventory: InventoryWriter, bad: str) -> None:
    plan = load_cluster(write_inventory()).plan
    with pytest.raises(InputError, match="--links"):
        select_links(plan, [bad])


def test_report_schema(write_inventory: InventoryWriter) -> None:
    plan = load_cluster(write_inventory()).plan
    report = Report(plan, [
        Check("l1", "carrier", "up, carrier", "up, carrier", True, "carrier present"),
        Check("l1", "bandwidth", "1.0 Gb/s", ">= 4 Gb/s", False, "check for a rate limit"),
        Check("l1", "rdma", "", "", None, "skipped: not available"),
    ])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["problems"] == [{"link": "l1", "check": "bandwidth", "value": "1.0 Gb/s",
                                 "expected": ">= 4 Gb/s", "message": "check for a rate limit"}]
    assert [c["ok"] for c in data["links"][0]["checks"]] == [True, False, None]


def test_node_facts_script_reports_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    assert node_facts_main(["lo", "nosuchif0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["interfaces"]["lo"]["exists"] is True and data["interfaces"]["lo"]["mtu"] == "65536"
    assert "127.0.0.1/8" in data["interfaces"]["lo"]["addresses"]
    assert data["interfaces"]["nosuchif0"] == {"name": "nosuchif0", "exists": False}
    assert data["interfaces"]["lo"]["pcie"] is None  # no PCIe device behind loopback: reported, not guessed


def test_verify_link_rejects_bad_options(write_inventory: InventoryWriter) -> None:
    result = subprocess.run([sys.executable, "-m", "sparkctl", "verify-link", "-i", str(write_inventory()),
                             "--duration", "0"], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "--duration" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("nodes", "ports", "paths"), [(2, ["p0"], 2), (3, ["p0"], 6), (5, ["p0", "p1"], 20)])
def test_switch_members_are_checked_in_a_ring_of_paths(write_inventory: InventoryWriter, nodes: int,
                                                        ports: list[str], paths: int) -> None:
    """Through a switch each Spark is paired with the next on every half: each end sends once and receives
    once (two Sparks: one path per half), on the half's own subnet."""
    plan = load_cluster(write_inventory(nodes, sparkctl_topology="switch", sparkctl_switch_ports=ports)).plan
    links = select_links(plan, [])
    assert len(links) == paths and all(link.kind == "switch" for link in links)
    for link in links:
        assert link.a.interface == link.b.interface and link.a.node != link.b.node
        assert link.a.address and link.b.address and {link.a.address.network, link.b.address.network} == {link.subnet}
    if nodes > 2:
        senders = Counter((link.a.node, link.a.interface) for link in links)
        receivers = Counter((link.b.node, link.b.interface) for link in links)
        assert senders == receivers and set(senders.values()) == {1} and len(senders) == paths
    assert {link.cable for link in select_links(plan, ["spark2:p0-spark1:p0"])} == {"spark1:p0-spark2:p0"}


def test_switch_paths_named_on_the_command_line_must_be_checked_ones(write_inventory: InventoryWriter) -> None:
    plan = load_cluster(write_inventory(4, sparkctl_topology="switch")).plan
    with pytest.raises(InputError, match="spark1:p0-spark3:p0 is not a planned cable"):
        select_links(plan, ["spark1:p0-spark3:p0"])
