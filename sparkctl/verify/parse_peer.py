"""Read the JSON line `peer_probe.py` prints on a node, on the controller side.

The probe runs with the node's own /usr/bin/python3 and knows nothing of sparkctl, so its output is
checked here like any other tool's: a node that answered with something else (an old copy, a Python
traceback) raises ParseError instead of being read as "no peer".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sparkctl.verify.parsing import ParseError

_TOOL = "peer_probe"


@dataclass(frozen=True)
class HeardIdentity:
    """A probe identity heard on the wire."""

    node: str
    interface: str
    mac: str
    frames: int

    def __str__(self) -> str:
        return f"{self.node}:{self.interface}"


@dataclass(frozen=True)
class PeerProbeReport:
    """What one interface heard during its window."""

    interface: str
    announce: str
    mac: str | None
    sent: int
    heard: tuple[HeardIdentity, ...]
    """Identities of other nodes: one on a direct cable, several through a switch."""
    own_node: tuple[HeardIdentity, ...]
    """Identities of this node's other interfaces (the twin half of the same port)."""
    brought_up: bool
    error: str | None


def parse_peer_probe(text: str) -> PeerProbeReport:
    """Parse the one JSON object the probe prints (the last non-empty line of its stdout)."""
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        data = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError as exc:
        raise ParseError(_TOOL, f"not JSON ({exc.msg})", text) from None
    if not isinstance(data, dict) or data.get("probe") != "sparkctl-peer-probe":
        raise ParseError(_TOOL, "not a sparkctl-peer-probe report", text)
    try:
        return PeerProbeReport(
            interface=str(data["iface"]),
            announce=str(data["announce"]),
            mac=data.get("mac"),
            sent=int(data["sent"]),
            heard=_identities(data["heard"]),
            own_node=_identities(data["own_node"]),
            brought_up=bool(data["brought_up"]),
            error=data.get("error"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError(_TOOL, f"a field is missing or malformed ({exc})", text) from None


def _identities(entries: Any) -> tuple[HeardIdentity, ...]:
    return tuple(
        HeardIdentity(str(e["node"]), str(e["iface"]), str(e["mac"]), int(e["frames"])) for e in entries
    )
