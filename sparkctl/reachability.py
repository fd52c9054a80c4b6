"""Which addresses a node must reach over its fabric once it is configured, and with how large a frame.

After an apply each node pings every one of them with a full-MTU frame that may not fragment: the other
end of each of its links (each PCIe half on its own), the storage servers of a storage split, and in a
switch topology every other Spark on the same subnet. A target that answers only small frames points at
an MTU mismatch on the way; one that does not answer at all, at the cable or the far end's config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sparkctl.model import ClusterPlan

TargetKind = Literal["peer", "storage", "switch"]

ICMP_OVERHEAD = 28
"""IPv4 header (20) + ICMP echo header (8): a payload of MTU - 28 bytes fills a frame of the MTU exactly."""


@dataclass(frozen=True)
class PingTarget:
    interface: str
    address: str
    mtu: int
    kind: TargetKind
    who: str
    """Named in messages: `spark2 enp1s0f0np0`, or `storage target`."""

    @property
    def payload(self) -> int:
        return self.mtu - ICMP_OVERHEAD

    def to_dict(self) -> dict[str, str | int]:
        return {"interface": self.interface, "address": self.address, "mtu": self.mtu, "kind": self.kind,
                "who": self.who, "payload": self.payload}


def ping_targets(plan: ClusterPlan, node: str) -> list[PingTarget]:
    """Every fabric address `node` must reach, in the order of its links."""
    mine = plan.nodes[node]
    mtu = {i.name: i.mtu for i in mine.interfaces} | {b.name: b.mtu for b in mine.bonds}
    out: list[PingTarget] = []
    for link in plan.links:
        if node not in (link.a.node, link.b.node):
            continue
        here, there = (link.a, link.b) if link.a.node == node else (link.b, link.a)
        if link.kind in ("peer", "bond") and there.address is not None:
            out.append(PingTarget(here.interface, str(there.address.ip), mtu[here.interface], "peer",
                                  f"{there.node} {there.interface}"))
        elif link.kind == "storage":
            out += [PingTarget(here.interface, str(t), mtu[here.interface], "storage", "storage target")
                    for t in link.targets]
    if plan.topology == "switch":
        for iface in mine.interfaces:
            for other in plan.nodes.values():
                theirs = other.interface(iface.name)
                if other.name != node and theirs is not None and theirs.addresses:
                    out.append(PingTarget(iface.name, str(theirs.addresses[0].ip), iface.mtu, "switch",
                                          f"{other.name} {theirs.name}"))
    return out
