"""Every rendered fabric drop-in passes real `netplan generate` and produces the networkd units planned."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sparkctl.cluster import load_cluster
from sparkctl.render import NETPLAN_PATH, node_files
from tests.unit.conftest import InventoryWriter

pytestmark = pytest.mark.skipif(shutil.which("netplan") is None, reason="netplan.io is installed by `make test`")

STORAGE = {"port": "p1", "networks": ["10.30.0.0/24", "10.31.0.0/24"], "targets": ["10.30.0.100"]}
TOPOLOGIES: dict[str, tuple[int, dict[str, Any]]] = {
    "direct": (2, {"sparkctl_topology": "direct"}),
    "dual-cable": (2, {"sparkctl_cabling": ["spark1:p0 spark2:p0", "spark1:p1 spark2:p1"]}),
    "seed-bond": (2, {"sparkctl_topology": "bond", "sparkctl_fabric_pool": "10.0.0.0/24",
                      "sparkctl_bond": {"members": ["enp1s0f0np0", "enp1s0f1np1"]}}),
    "bond": (2, {"sparkctl_topology": "bond"}),
    "ring3": (3, {"sparkctl_topology": "ring"}),
    "ring6": (6, {"sparkctl_topology": "ring"}),
    "storage-split": (2, {"sparkctl_topology": "storage-split", "sparkctl_storage": STORAGE}),
    "switch": (4, {"sparkctl_topology": "switch", "sparkctl_switch_ports": ["p0", "p1"]}),
}


def netplan_generate(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["netplan", "generate", "--root-dir", str(root)], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("case", list(TOPOLOGIES))
def test_rendered_netplan_is_valid(write_inventory: InventoryWriter, tmp_path: Path, case: str) -> None:
    nodes, group_vars = TOPOLOGIES[case]
    plan = load_cluster(write_inventory(nodes, **group_vars)).plan
    for name, node in plan.nodes.items():
        root = tmp_path / "root" / name
        target = root / NETPLAN_PATH.lstrip("/")
        target.parent.mkdir(parents=True)
        target.write_text(node_files(plan, name)["netplan"].content)
        target.chmod(0o600)
        result = netplan_generate(root)
        assert result.returncode == 0, result.stderr
        assert "world-readable" not in result.stderr
        units = root / "run" / "systemd" / "network"
        for iface in node.interfaces:
            unit = (units / f"10-netplan-{iface.name}.network").read_text()
            assert f"MTUBytes={plan.mtu}" in unit or f"MTUBytes={plan.mtu}" in (
                units / f"10-netplan-{iface.name}.link").read_text()
            for address in iface.addresses:
                assert f"Address={address}" in unit
            if iface.role == "bond-member":
                assert f"Bond={node.bonds[0].name}" in unit
        for route in node.routes:
            unit = (units / f"10-netplan-{route.interface}.network").read_text()
            assert f"Destination={route.to}" in unit and f"Gateway={route.via}" in unit
        for bond in node.bonds:
            netdev = (units / f"10-netplan-{bond.name}.netdev").read_text()
            assert "Mode=802.3ad" in netdev and "TransmitHashPolicy=layer3+4" in netdev
            assert f"Address={bond.addresses[0]}" in (units / f"10-netplan-{bond.name}.network").read_text()
        assert not (units / "10-netplan-enP7s7.network").exists()  # management never configured


def test_netplan_generate_catches_a_broken_drop_in(tmp_path: Path) -> None:
    """The validation step itself must be able to fail, or it proves nothing."""
    target = tmp_path / NETPLAN_PATH.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_text("network:\n  version: 2\n  bonds:\n    bond0:\n      interfaces: [enp1s0f0np0]\n"
                      "      parameters: {mode: lacp}\n")
    target.chmod(0o600)
    result = netplan_generate(tmp_path)
    assert result.returncode != 0 and "bond" in result.stderr.lower()
