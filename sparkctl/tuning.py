"""Kernel settings a 200 Gb/s fabric needs, each with the reason it is there.

The defaults were sized for 1-10 Gb/s links: socket buffers cap a single TCP stream (iperf3, NCCL's
socket fallback, Ray object transfers) far below what one PCIe half (~100 Gb/s) carries, and the
receive backlog drops bursts before the stack sees them.
"""

from __future__ import annotations

from typing import Final

SYSCTL: Final[dict[str, tuple[str, str]]] = {
    "net.core.rmem_max": ("268435456", "lets a socket ask for a 256 MiB receive buffer: a 100 Gb/s stream needs a window of tens of MiB"),
    "net.core.wmem_max": ("268435456", "the same ceiling for send buffers"),
    "net.ipv4.tcp_rmem": ("4096 131072 268435456", "TCP autotuning may grow receive windows up to that ceiling"),
    "net.ipv4.tcp_wmem": ("4096 131072 268435456", "TCP autotuning may grow send windows up to that ceiling"),
    "net.core.netdev_max_backlog": ("250000", "the default 1000-packet backlog overflows in bursts at 100 Gb/s"),
    "net.ipv4.tcp_mtu_probing": ("1", "recovers when a path silently drops jumbo frames instead of stalling"),
}

ROUTING_WHY: Final = "forwards between ring neighbours, so nodes that are not adjacent reach each other"


def why(key: str) -> str:
    """The reason for a sysctl the plan sets."""
    if key == "net.ipv4.ip_forward":
        return ROUTING_WHY
    return SYSCTL[key][1]
