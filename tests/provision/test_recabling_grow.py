"""A ring grown from three to four Sparks: a node added to the inventory and cabled in, ONE re-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkctl.cluster import load_cluster
from sparkctl.lab.edits import copy_without
from tests.labkit import running_lab
from tests.provision.provkit import assert_fabric_as_planned
from tests.provision.recabling import failures, recable, reconcile

pytestmark = pytest.mark.lab


def test_ring_grown_from_three_to_four_nodes(lab_root: Path, tmp_path: Path) -> None:
    """A 3-ring of spark1..3 (spark4 booted but in no inventory and uncabled) is provisioned; then spark4
    is added to the inventory and cabled into the ring (spark3 -> spark4 -> spark1) and ONE re-run
    provisions it and renumbers the others."""
    with running_lab(lab_root, prefix="rc", nodes=4, topology="ring") as lab:
        recable(lab, ["spark3:p0", "spark4:p0"], [("spark3:p0", "spark1:p1")])
        three = copy_without(lab.inventory, tmp_path / "inventory", ["spark4"])
        result = lab.playbook(inventory=three)
        assert result.returncode == 0, failures(result.stdout)
        small = assert_fabric_as_planned(lab, load_cluster(three, discovered=lab.cables()))
        assert len(small.plan.cables) == 3 and "spark4" not in small.plan.nodes
        recable(lab, ["spark3:p0"], [("spark3:p0", "spark4:p1"), ("spark4:p0", "spark1:p1")])
        reconcile(lab)
        assert len(lab.expected().plan.cables) == 4
