"""What a DGX Spark's ConnectX-7 looks like from Linux.

Every QSFP56 cage (port) is wired to the SoC through two PCIe Gen5 x4 links, so it shows up as two
netdevs ("halves"), one per PCIe domain. A cable only carries its full 200 Gb/s when both halves are
addressed, each on its own subnet; this table is where every other module learns those names.
"""

from __future__ import annotations

from typing import Final

PORTS: Final = ("p0", "p1")
"""p0 is the cage next to the RJ45 jack, p1 the farther one."""

HALVES: Final = (0, 1)
"""Half 0 sits in PCIe domain 0000, half 1 in domain 0002."""

MANAGEMENT_INTERFACE: Final = "enP7s7"
"""The 10GbE RJ45 port. sparkctl never configures it."""

NETDEVS: Final[dict[str, tuple[str, str]]] = {
    "p0": ("enp1s0f0np0", "enP2p1s0f0np0"),
    "p1": ("enp1s0f1np1", "enP2p1s0f1np1"),
}

RDMA_DEVICES: Final[dict[str, str]] = {
    "enp1s0f0np0": "rocep1s0f0",
    "enp1s0f1np1": "rocep1s0f1",
    "enP2p1s0f0np0": "roceP2p1s0f0",
    "enP2p1s0f1np1": "roceP2p1s0f1",
}

ALL_NETDEVS: Final = tuple(dev for port in PORTS for dev in NETDEVS[port])

LINK_SPEED_MBPS: Final = 200_000
"""What ethtool reports on each half of a healthy 200G link."""


def netdev(port: str, half: int) -> str:
    """The netdev name of one half of a port."""
    return NETDEVS[port][half]


def port_of(dev: str) -> tuple[str, int]:
    """The (port, half) a netdev belongs to; KeyError for anything that is not a fabric netdev."""
    for port, devs in NETDEVS.items():
        if dev in devs:
            return port, devs.index(dev)
    raise KeyError(dev)
