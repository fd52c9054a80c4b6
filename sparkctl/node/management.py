"""What the fabric must never claim on a node: its management networks and the way back to the controller.

The controller checks the plan against the management network it assumes (a /24 around each
`ansible_host`, or `sparkctl_management_network`). Only the node knows the real ones: the networks on
the interface that carries its management address, and the addresses of the SSH sessions that reached
it over management (the controller's among them, whatever router lies between). A planned fabric subnet
or route that overlaps one of those networks, or contains one of those addresses, would send the
node's replies into the fabric: management would be cut. This is checked before anything is applied.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ESTABLISHED = "01"
"""The TCP state column of /proc/net/tcp for an established connection."""


@dataclass(frozen=True)
class Protected:
    networks: tuple[tuple[str, ipaddress.IPv4Interface], ...]
    """(interface, address with prefix) on every management interface."""
    sessions: tuple[ipaddress.IPv4Address, ...]
    """Remote ends of the SSH sessions that came in over management."""


def _hex_ipv4(field: str) -> tuple[ipaddress.IPv4Address, int] | None:
    """An address:port of /proc/net/tcp (little-endian hex), or of tcp6 when it is IPv4-mapped."""
    address, _, port = field.partition(":")
    raw = bytes.fromhex(address)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1]), int(port, 16)
    if len(raw) == 16:
        words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))  # each 32-bit word is little-endian
        mapped = ipaddress.IPv6Address(words).ipv4_mapped
        if mapped is not None:
            return mapped, int(port, 16)
    return None


def ssh_sessions(tables: Iterable[str], port: int) -> list[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]]:
    """(local, remote) of each established IPv4 connection to local `port` in /proc/net/tcp{,6} text."""
    out = []
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != ESTABLISHED:
                continue
            local, remote = _hex_ipv4(fields[1]), _hex_ipv4(fields[2])
            if local and remote and local[1] == port:
                out.append((local[0], remote[0]))
    return out


def read_tcp_tables(proc: Path = Path("/proc/net")) -> list[str]:
    return [p.read_text(encoding="ascii", errors="replace") for p in (proc / "tcp", proc / "tcp6") if p.exists()]


def protected(links: Sequence[Mapping[str, Any]], management_address: str, fabric: Iterable[str],
              sessions: Sequence[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]]) -> Protected:
    """The management networks and sessions of a node, from `ip -json address show` and its SSH sessions.

    A management interface is one, outside the fabric, that holds the management address or the local
    end of an SSH session."""
    fabric = set(fabric)
    networks: list[tuple[str, ipaddress.IPv4Interface]] = []
    session_locals = {local for local, _ in sessions}
    came_in: set[ipaddress.IPv4Address] = set()
    for link in links:
        name = str(link.get("ifname", ""))
        if name in fabric or name == "lo":
            continue
        mine = [ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}") for a in link.get("addr_info", [])
                if a.get("family") == "inet"]
        locals_ = {a.ip for a in mine}
        if str(management_address) in {str(ip) for ip in locals_} or locals_ & session_locals:
            networks += [(name, a) for a in mine]
            came_in |= {remote for local, remote in sessions if local in locals_}
    return Protected(tuple(networks), tuple(sorted(came_in)))


def conflicts(planned: Sequence[tuple[str, ipaddress.IPv4Network]], guard: Protected) -> list[str]:
    """One sentence per planned network (named by what plans it) that would cut management."""
    out = []
    for what, network in planned:
        for iface, address in guard.networks:
            if network.overlaps(address.network):
                out.append(f"{what} {network} overlaps {address.network}, the management network on {iface}")
        for session in guard.sessions:
            if session in network:
                out.append(f"{what} {network} contains {session}, which reaches this node over SSH "
                           "(the controller): its replies would leave through the fabric")
    return out
