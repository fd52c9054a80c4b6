"""A ring grown from three to four Sparks: a node added to the inventory and cabled in, ONE re-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkctl.cluster import Cluster, load_cluster
from sparkctl.lab.edits import copy_without
from tests.labkit import Lab, running_lab
from tests.provision.provkit import assert_fabric_as_planned
from tests.provision.recabling import failures, recable, reconcile

pytestmark = pytest.mark.lab


def test_ring_grown_from_three_to_four_nodes(lab_root: Path, tmp_path: Path) -> None:
    """A 3-ring of spark1..3 (spark4 booted but in no inventory and uncabled) is provisioned; then spark4
    is added to the inventory and cabled into the ring (spark3 -> spark4 -> spark1) and ONE re-run
    provisions it and renumbers the others; the ring of four routes between non-neighbours."""
    with running_lab(lab_root, prefix="rc", nodes=4, topology="ring") as lab:
        recable(lab, ["spark3:p0", "spark4:p0"], [("spark3:p0", "spark1:p1")])
        three = copy_without(lab.inventory, tmp_path / "inventory", ["spark4"])
        result = lab.playbook(inventory=three)
        assert result.returncode == 0, failures(result.stdout)
        small = assert_fabric_as_planned(lab, load_cluster(three, discovered=lab.cables()))
        assert len(small.plan.cables) == 3 and "spark4" not in small.plan.nodes
        recable(lab, ["spark3:p0"], [("spark3:p0", "spark4:p1"), ("spark4:p0", "spark1:p1")])
        reconcile(lab)
        grown = lab.expected()
        assert len(grown.plan.cables) == 4
        assert_non_neighbours_reached(lab, grown)


def assert_non_neighbours_reached(lab: Lab, cluster: Cluster) -> None:
    """In a ring of four, spark1 and spark3 share no cable: they talk through a neighbour that forwards."""
    for node in cluster.plan.nodes:
        assert lab.sh(node, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    far = [link for link in cluster.plan.links if {link.a.node, link.b.node} == {"spark2", "spark3"}]
    assert len(far) == 2
    for link in far:
        target = link.b if link.b.node == "spark3" else link.a
        assert target.address is not None
        ping = lab.sh("spark1", "ping", "-c", "2", "-W", "2", "-M", "do", "-s", str(cluster.plan.mtu - 28),
                      str(target.address.ip), check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
