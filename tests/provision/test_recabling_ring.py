"""Recabling a provisioned 3-ring: ONE plain `ansible-playbook` re-run reconciles it and verify-link passes.
The scenarios share one lab and run in order (each starts from the previous one's cabling)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labkit import Lab, running_lab
from tests.provision.provkit import assert_fabric_as_planned, flat
from tests.provision.recabling import recable, reconcile

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def ring_lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, prefix="rc", nodes=3, topology="ring") as lab:
        yield lab


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
