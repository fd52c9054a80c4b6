"""Which cage is cabled to which: the conventional cabling of each topology, and checks of a given one.

Cabling comes from one of three places, in this order: pinned in the inventory (`sparkctl_cabling`),
discovered on the nodes by provisioning, or the convention of the topology (what the README tells
people to plug in). The planner is told which one it got so the report can say so.
"""

from __future__ import annotations

from collections.abc import Sequence

from sparkctl.errors import InputError
from sparkctl.model import Cable, Endpoint


class CablingUnknown(InputError):
    """The topology has no conventional cabling for this many Sparks and none is pinned.

    Not a dead end for provisioning: the play discovers the cables on the nodes and plans with them.
    """

RING_SIZES = range(3, 9)
SWITCH_SIZES = range(2, 65)


def conventional(topology: str, nodes: Sequence[str], storage_port: str = "p1") -> list[Cable]:
    """The cabling a topology expects when the inventory pins none."""
    if topology == "direct":
        if len(nodes) != 2:
            raise CablingUnknown(
                f"direct cabling between {len(nodes)} Sparks has no convention, so it must be discovered "
                "(sparkctl provision does) or pinned",
                key="sparkctl_cabling", fix='list the cables, e.g. ["spark1:p0 spark2:p0", ...], or use ring',
            )
        return [Cable.between(Endpoint(nodes[0], "p0"), Endpoint(nodes[1], "p0"))]
    if topology == "bond":
        return [Cable.between(Endpoint(nodes[0], p), Endpoint(nodes[1], p)) for p in ("p0", "p1")]
    if topology == "ring":
        return [
            Cable.between(Endpoint(node, "p0"), Endpoint(nodes[(i + 1) % len(nodes)], "p1"))
            for i, node in enumerate(nodes)
        ]
    if topology == "storage-split":
        peer_port = "p0" if storage_port == "p1" else "p1"
        if len(nodes) % 2:
            raise InputError(
                f"storage-split pairs Sparks peer to peer, and {len(nodes)} is odd",
                key="sparkctl_cabling", fix="add or remove a Spark, or list the cables in sparkctl_cabling",
            )
        return [
            Cable.between(Endpoint(nodes[i], peer_port), Endpoint(nodes[i + 1], peer_port))
            for i in range(0, len(nodes), 2)
        ]
    return []  # switch: every node's ports go to the switch, no node-to-node cables


def ring_order(cables: Sequence[Cable], nodes: Sequence[str]) -> list[str]:
    """Nodes in ring order (following each node's p0), or InputError if the cables do not close one ring."""
    nxt: dict[str, str] = {}
    for cable in cables:
        for here, there in ((cable.a, cable.b), (cable.b, cable.a)):
            if here.port == "p0":
                nxt[here.node] = there.node
    order = [nodes[0]]
    while len(order) < len(nodes):
        following = nxt.get(order[-1])
        if following is None or following in order:
            break
        order.append(following)
    if len(order) != len(nodes) or nxt.get(order[-1]) != order[0] or len(cables) != len(nodes):
        raise InputError(
            "the cables do not form one closed ring through every Spark",
            key="sparkctl_cabling", fix="cable each node's p0 to the next node's p1, the last back to the first",
        )
    return order
