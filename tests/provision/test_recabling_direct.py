"""Recabling a provisioned 2-node direct lab: ONE plain `ansible-playbook` re-run reconciles it and
verify-link passes. The scenarios share one lab and run in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labkit import Lab, running_lab
from tests.provision.provkit import assert_fabric_as_planned, flat
from tests.provision.recabling import recable, reconcile

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def direct_lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, prefix="rc", nodes=2, topology="direct") as lab:
        yield lab


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
