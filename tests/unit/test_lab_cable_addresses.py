"""A lab cable move re-creates a port's netdevs: which of their old addresses the lab writes back itself."""

from __future__ import annotations

from pathlib import Path

from sparkctl.lab.cabling import _left_to_the_node
from sparkctl.lab.network import PortConfig
from sparkctl.lab.paths import LabPaths
from sparkctl.lab.topology import Port


def test_addresses_the_nodes_netplan_configures_are_left_to_the_node(tmp_path: Path) -> None:
    """networkd configures those from its file the moment the netdev appears; the lab writing them at the
    same moment made systemd 252 fail the link. Addresses nobody's config names (a test's own, a fresh
    lab's) are written back as before."""
    paths = LabPaths(tmp_path, "lab")
    netplan = paths.node_etc("spark1") / "netplan"
    netplan.mkdir(parents=True)
    (netplan / "60-sparkctl-fabric.yaml").write_text(
        "network:\n  ethernets:\n    enp1s0f0np0:\n      addresses: [198.19.0.1/24]\n", encoding="utf-8")
    configs = [PortConfig(9000, True, ("198.19.0.1/24",)), PortConfig(9000, True, ("198.19.1.1/24",))]
    kept = _left_to_the_node(paths, Port("spark1", "p0"), configs)
    assert kept == [PortConfig(9000, True, ()), PortConfig(9000, True, ("198.19.1.1/24",))]
    assert _left_to_the_node(paths, Port("spark2", "p0"), configs) == configs  # spark2 has no netplan
