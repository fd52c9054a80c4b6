"""A 2-node storage split: provisioned, then the peer and storage cages swapped on both Sparks. The
inventory names the storage cage, so the re-run before the inventory says so must stop and change nothing;
after `sparkctl_storage.port` is edited, ONE plain re-run reconciles it and verify-link passes. The tests share
one lab and run in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkctl.cluster import Cluster
from sparkctl.lab.edits import set_storage_port
from tests.labkit import Lab, running_lab
from tests.provision.provkit import assert_fabric_as_planned, flat
from tests.provision.recabling import NETPLAN, recable, reconcile

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def storage_lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, prefix="rs", nodes=2, topology="storage-split") as lab:
        yield lab


def assert_storage_answers(lab: Lab, cluster: Cluster) -> None:
    """Every storage half of every node reaches its storage target at full MTU, unfragmented."""
    storage = [link for link in cluster.plan.links if link.kind == "storage"]
    assert len(storage) == 4  # two nodes, two PCIe halves each
    for link in storage:
        assert link.targets, link.name
        for target in link.targets:
            lab.sh(link.a.node, "ping", "-n", "-q", "-c", "1", "-W", "2", "-M", "do", "-s",
                   str(cluster.plan.mtu - 28), "-I", link.a.interface, str(target))


def test_storage_split_reaches_the_peer_and_the_storage_targets(storage_lab: Lab) -> None:
    result = storage_lab.playbook()
    assert result.returncode == 0, flat(result.stdout[-3000:])
    cluster = assert_fabric_as_planned(storage_lab)
    assert [c.name for c in cluster.plan.cables] == ["spark1:p0-spark2:p0"]
    assert_storage_answers(storage_lab, cluster)


def test_cages_swapped_stops_until_the_inventory_names_the_new_storage_cage(storage_lab: Lab) -> None:
    recable(storage_lab, ["spark1:p0", "spark1:p1", "spark2:p1"],
            [("spark1:p1", "spark2:p1"), ("spark1:p0", "storage"), ("spark2:p0", "storage")])
    before = {node: storage_lab.sh(node, "cat", NETPLAN).stdout for node in ("spark1", "spark2")}
    result = storage_lab.playbook()
    assert result.returncode != 0
    output = flat(result.stdout)
    assert ("spark1's storage servers answer on p0, not on p1; spark2's storage servers answer on p0, not on p1: "
            "the storage and peer cables are on each other's cages") in output, output[-3000:]
    assert "sparkctl_storage.port" in output
    for node, text in before.items():
        assert storage_lab.sh(node, "cat", NETPLAN).stdout == text, f"a refused run changed {node}"


def test_cages_swapped_reconciled_by_one_rerun(storage_lab: Lab) -> None:
    set_storage_port(storage_lab.inventory, "p0")
    reconcile(storage_lab)
    cluster = storage_lab.expected()
    assert [c.name for c in cluster.plan.cables] == ["spark1:p1-spark2:p1"]
    assert_storage_answers(storage_lab, cluster)
