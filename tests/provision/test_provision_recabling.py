"""Recabling a provisioned lab: ONE plain `ansible-playbook` re-run must reconcile it, and verify-link pass.

Each scenario moves cables the way a person does at the back of the rack, re-runs playbooks/site.yml
once and checks the nodes against the plan for the cabling the lab really has. It also reads
systemd-networkd's journal on every node: a node whose drop-in did not change must not have had a link
reconfigured at all, and no link may be configured twice in one run (a reload followed by a
reconfigure of the same link is the overlap of issue 13, which can make networkd 252 fail links).

The scenarios of one topology share one lab and run in order (each starts from the previous one's cabling).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sparkctl.cluster import load_cluster
from tests.labkit import ANSIBLE_PLAYBOOK, REPO, SPARKCTL, Lab, running_lab
from tests.provision.provkit import assert_fabric_as_planned, flat

pytestmark = pytest.mark.lab

NETPLAN = "/etc/netplan/60-sparkctl-fabric.yaml"


@pytest.fixture(scope="module")
def ring_lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, prefix="rc", nodes=3, topology="ring") as lab:
        yield lab


@pytest.fixture(scope="module")
def direct_lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, prefix="rc", nodes=2, topology="direct") as lab:
        yield lab


def recable(lab: Lab, pull: list[str], plug: list[tuple[str, str]]) -> None:
    for port in pull:
        lab.cli("uncable", port)
    for a, b in plug:
        lab.cli("cable", a, b)


def verify_link(lab: Lab) -> None:
    result = subprocess.run([SPARKCTL, "verify-link", "--inventory", str(lab.inventory), "--json",
                             "--duration", "2"], capture_output=True, text=True, timeout=300, cwd=REPO,
                            env={**os.environ, "COLUMNS": "160"}, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert json.loads(result.stdout)["ok"] is True


def failures(output: str) -> str:
    """The error lines of a failed run, then its tail."""
    errors = [line for line in output.splitlines() if "[ERROR]" in line or "fatal:" in line]
    return "\n".join(errors) + "\n" + flat(output[-2000:])


def configurations(lab: Lab, node: str, since: str) -> Counter[str]:
    """How often networkd started configuring each link since `since` (epoch seconds): systemd 252 logs
    "Reconfiguring with" when a reload gives a link a new file and "Configuring with" when a reconfigure
    (or a new netdev) starts one, so a reload and a reconfigure of one link show up as two."""
    out = lab.sh(node, "journalctl", "-u", "systemd-networkd", "--since", f"@{since}", "-o", "cat",
                 "--no-pager").stdout
    return Counter(line.split(":")[0] for line in out.splitlines()
                   if ": Reconfiguring with " in line or ": Configuring with " in line)


def reconcile(lab: Lab) -> None:
    """One plain re-run after a recabling: it must succeed, leave the nodes as planned and pass verify-link;
    nodes whose drop-in did not change are untouched and no link is reconfigured twice."""
    nodes = sorted(lab.state.nodes)
    before = {node: lab.sh(node, "cat", NETPLAN, check=False).stdout for node in nodes}
    since = {node: lab.sh(node, "date", "+%s.%N").stdout.strip() for node in nodes}
    result = lab.playbook()
    assert result.returncode == 0, failures(result.stdout)
    assert_fabric_as_planned(lab)
    for node in nodes:
        counts = configurations(lab, node, since[node])
        if lab.sh(node, "cat", NETPLAN).stdout == before[node]:
            assert not counts, f"{node} needed no change, yet networkd reconfigured {dict(counts)}"
        twice = {link: n for link, n in counts.items() if n > 1}
        assert not twice, f"{node}: networkd configured links more than once in one run: {twice}"
    verify_link(lab)


def test_ring_is_provisioned(ring_lab: Lab) -> None:
    result = ring_lab.playbook()
    assert result.returncode == 0, flat(result.stdout[-3000:])
    assert len(assert_fabric_as_planned(ring_lab).plan.cables) == 3


def test_ring_reversed_every_cable_moved(ring_lab: Lab) -> None:
    before = ring_lab.expected().plan.cables
    recable(ring_lab, ["spark1:p0", "spark2:p0", "spark3:p0"],
            [("spark1:p1", "spark2:p0"), ("spark2:p1", "spark3:p0"), ("spark3:p1", "spark1:p0")])
    reconcile(ring_lab)
    assert ring_lab.expected().plan.cables != before


def test_ring_with_two_nodes_swapped(ring_lab: Lab) -> None:
    """spark2 and spark3 trade places in the (reversed) ring: all three cables move again."""
    recable(ring_lab, ["spark1:p1", "spark2:p1", "spark3:p1"],
            [("spark1:p1", "spark3:p0"), ("spark3:p1", "spark2:p0"), ("spark2:p1", "spark1:p0")])
    reconcile(ring_lab)
    assert {c.name for c in ring_lab.expected().plan.cables} == {
        "spark1:p0-spark2:p1", "spark2:p0-spark3:p1", "spark1:p1-spark3:p0"}


def test_direct_is_provisioned(direct_lab: Lab) -> None:
    result = direct_lab.playbook()
    assert result.returncode == 0, flat(result.stdout[-3000:])
    assert [c.name for c in assert_fabric_as_planned(direct_lab).plan.cables] == ["spark1:p0-spark2:p0"]


def test_direct_p0_to_p1(direct_lab: Lab) -> None:
    recable(direct_lab, ["spark1:p0"], [("spark1:p1", "spark2:p1")])
    reconcile(direct_lab)
    assert [c.name for c in direct_lab.expected().plan.cables] == ["spark1:p1-spark2:p1"]
    for node in ("spark1", "spark2"):
        for iface in ("enp1s0f0np0", "enP2p1s0f0np0"):
            shown = direct_lab.sh(node, "ip", "-4", "-o", "address", "show", "dev", iface).stdout
            assert shown.strip() == "", f"{node} {iface} kept its old address: {shown}"


def test_direct_one_cable_to_two_and_back(direct_lab: Lab) -> None:
    recable(direct_lab, [], [("spark1:p0", "spark2:p0")])
    reconcile(direct_lab)
    assert len(direct_lab.expected().plan.cables) == 2
    recable(direct_lab, ["spark1:p0"], [])
    reconcile(direct_lab)
    assert [c.name for c in direct_lab.expected().plan.cables] == ["spark1:p1-spark2:p1"]


def test_ring_grown_from_three_to_four_nodes(lab_root: Path, tmp_path: Path) -> None:
    """A 3-ring of spark1..3 (spark4 booted but in no inventory and uncabled) is provisioned; then spark4
    is added to the inventory and cabled into the ring (spark3 -> spark4 -> spark1) and ONE re-run
    provisions it and renumbers the others."""
    with running_lab(lab_root, prefix="rc", nodes=4, topology="ring") as lab:
        recable(lab, ["spark3:p0", "spark4:p0"], [("spark3:p0", "spark1:p1")])
        three = tmp_path / "inventory"
        shutil.copytree(lab.inventory, three)
        hosts = yaml.safe_load((three / "hosts.yml").read_text(encoding="utf-8"))
        del hosts["all"]["children"]["sparks"]["hosts"]["spark4"]
        (three / "hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
        result = subprocess.run(
            [ANSIBLE_PLAYBOOK, "-i", str(three), str(REPO / "playbooks" / "site.yml")], capture_output=True,
            text=True, cwd=REPO, timeout=600, check=False,
            env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"})
        assert result.returncode == 0, failures(result.stdout)
        small = assert_fabric_as_planned(lab, load_cluster(three, discovered=lab.cables()))
        assert len(small.plan.cables) == 3 and "spark4" not in small.plan.nodes
        recable(lab, ["spark3:p0"], [("spark3:p0", "spark4:p1"), ("spark4:p0", "spark1:p1")])
        reconcile(lab)
        assert len(lab.expected().plan.cables) == 4
