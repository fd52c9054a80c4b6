"""Read iproute2 JSON: `ip -j link show` and `ip -6 -j neigh show dev IF`.

`ip -j link` gives, per interface, the MAC, MTU and flags in one call. Carrier comes from the flags:
LOWER_UP means the PHY sees a partner, NO-CARRIER that it does not; an interface without the UP
flag reports neither, so its carrier is unknown rather than absent. The IPv6 neighbour table maps
link-local addresses (learned from `ping -6 ff02::1%IF`) to MACs, which is one way to learn who is
on the other end of a cable when IPv6 link-local is enabled on the fabric interface.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sparkctl.verify.parsing import ParseError


@dataclass(frozen=True)
class IpLink:
    """One interface as `ip -j link` reports it."""

    name: str
    mac: str | None
    mtu: int
    operstate: str
    flags: tuple[str, ...]

    @property
    def admin_up(self) -> bool:
        return "UP" in self.flags

    @property
    def carrier(self) -> bool | None:
        """True with LOWER_UP, False with NO-CARRIER, None while administratively down."""
        if "LOWER_UP" in self.flags:
            return True
        return False if self.admin_up else None


@dataclass(frozen=True)
class Neighbor:
    """One neighbour entry; `mac` is None for FAILED/INCOMPLETE entries."""

    address: str
    mac: str | None
    states: tuple[str, ...]


def parse_ip_link(text: str) -> dict[str, IpLink]:
    """Interfaces by name from `ip -j link show [dev IF]`."""
    links: dict[str, IpLink] = {}
    for entry in _json_list("ip -j link", text):
        try:
            link = IpLink(
                name=str(entry["ifname"]),
                mac=entry.get("address"),
                mtu=int(entry["mtu"]),
                operstate=str(entry.get("operstate", "UNKNOWN")),
                flags=tuple(str(flag) for flag in entry.get("flags", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError("ip -j link", f"an entry lacks ifname or mtu ({exc})", text) from None
        links[link.name] = link
    return links


def parse_ip_neigh(text: str) -> list[Neighbor]:
    """Entries of `ip -6 -j neigh show dev IF` (also works for IPv4)."""
    neighbors: list[Neighbor] = []
    for entry in _json_list("ip -j neigh", text):
        if "dst" not in entry:
            raise ParseError("ip -j neigh", "an entry has no `dst`", text)
        neighbors.append(
            Neighbor(
                address=str(entry["dst"]),
                mac=entry.get("lladdr"),
                states=tuple(str(state) for state in entry.get("state", ())),
            )
        )
    return neighbors


def _json_list(tool: str, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(tool, f"not JSON ({exc.msg})", text) from None
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        raise ParseError(tool, "expected a JSON list of objects", text)
    return data
