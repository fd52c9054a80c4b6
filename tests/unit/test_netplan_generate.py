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


# What a DGX OS node (Ubuntu 24.04 desktop) keeps beside our drop-in. Netplan reads /lib/netplan (the
# distribution's default, which /usr/lib/netplan is on a merged-/usr system), /etc/netplan and /run/netplan.
DGX_OS_NEIGHBOURS = {
    "lib/netplan/00-network-manager-all.yaml": "network:\n  version: 2\n  renderer: NetworkManager\n",
    "etc/netplan/00-installer-config.yaml":
        "network: {version: 2, renderer: NetworkManager, ethernets: {enP7s7: {dhcp4: true}}}\n",
    "etc/netplan/50-cloud-init.yaml":
        "network:\n  version: 2\n  ethernets:\n    eth9:\n      dhcp4: true\n      match: {macaddress: '02:00:00:00:00:09'}\n"
        "      set-name: eth9\n",
    "etc/netplan/90-NM-6b6c2a57-0d3b-4a5e-9c1f-2f4b1a9d7e11.yaml":
        "network:\n  version: 2\n  wifis:\n    NM-6b6c2a57-0d3b-4a5e-9c1f-2f4b1a9d7e11:\n      renderer: NetworkManager\n"
        "      match: {name: wlP9s9}\n      dhcp4: true\n      access-points:\n        home:\n"
        "          auth: {key-management: psk, password: correct-horse}\n"
        "          networkmanager: {uuid: 6b6c2a57-0d3b-4a5e-9c1f-2f4b1a9d7e11, name: home}\n",
}


def generated(root: Path) -> dict[str, str]:
    """Every file `netplan generate` wrote under ROOT/run, by path relative to it."""
    result = netplan_generate(root)
    assert result.returncode == 0, result.stderr
    run = root / "run"
    return {str(path.relative_to(run)): path.read_text() for path in sorted(run.rglob("*")) if path.is_file()}


def belongs_to(path: str, devices: set[str]) -> bool:
    """Whether a generated networkd file is about one of DEVICES."""
    return any(path.endswith((f"-{device}.network", f"-{device}.link", f"-{device}.netdev")) for device in devices)


@pytest.mark.parametrize("case", ["direct", "ring3", "storage-split", "bond"])
def test_drop_in_leaves_every_other_device_to_its_own_renderer(
    write_inventory: InventoryWriter, tmp_path: Path, case: str,
) -> None:
    """With the node's own files alone and with our drop-in added, every non-fabric device renders the same."""
    nodes, group_vars = TOPOLOGIES[case]
    plan = load_cluster(write_inventory(nodes, **group_vars)).plan
    node = plan.nodes["spark1"]
    fabric = {iface.name for iface in node.interfaces} | {bond.name for bond in node.bonds}
    outputs = {}
    for variant in ("alone", "with-drop-in"):
        root = tmp_path / variant
        for relative, content in DGX_OS_NEIGHBOURS.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(content)
            (root / relative).chmod(0o600)
        if variant == "with-drop-in":
            target = root / NETPLAN_PATH.lstrip("/")
            target.write_text(node_files(plan, "spark1")["netplan"].content)
            target.chmod(0o600)
        outputs[variant] = generated(root)
    alone, ours = outputs["alone"], outputs["with-drop-in"]
    assert "NetworkManager/system-connections/netplan-enP7s7.nmconnection" in alone
    others = {path: text for path, text in ours.items() if not belongs_to(path, fabric)}
    rules = "udev/rules.d/90-netplan.rules"
    for path in set(alone) | set(others):
        if path == rules:
            continue
        assert others.get(path) == alone.get(path), f"{path} changed by the fabric drop-in"
    # udev rules: the non-fabric lines are the same; each fabric device is on NetworkManager's deny-list.
    alone_rules = alone.get(rules, "").splitlines()
    our_rules = ours.get(rules, "").splitlines()
    fabric_lines = [line for line in our_rules if any(f'"{device}"' in line or f".{device} " in line
                                                      for device in fabric)]
    assert [line for line in our_rules if line not in fabric_lines] == alone_rules
    for device in node.interfaces:
        assert f'ENV{{ID_NET_NAME}}=="{device.name}", ENV{{NM_UNMANAGED}}="1"' in ours[rules]
        assert f"systemd/network/10-netplan-{device.name}.network" in ours
        assert f"NetworkManager/system-connections/netplan-{device.name}.nmconnection" not in ours
    assert "systemd/network/10-netplan-enP7s7.network" not in ours
