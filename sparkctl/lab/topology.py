"""What a lab plugs in: the conventional cabling of each topology, as the README tells people to cable.

The lab cables the convention at `up`; `lab cable`/`lab uncable` change it afterwards, so provisioning
must discover the cabling instead of trusting the topology name (the inventory never pins it).
A cable ends at two Spark ports, or at a Spark port and one of the lab's hubs: the `storage` target
(storage-split) or the `switch` (switch topology), each a namespace with one bridge per half.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sparkctl import hardware
from sparkctl.errors import InputError
from sparkctl.model import Endpoint

TOPOLOGIES: Final = ("direct", "ring", "storage-split", "switch", "bond")
DEFAULT_TOPOLOGY: Final = "direct"
NODE_COUNTS: Final[dict[str, range]] = {
    "direct": range(2, 3),
    "bond": range(2, 3),
    "ring": range(3, 9),
    "storage-split": range(2, 3),
    "switch": range(2, 9),
}
MAX_NODES: Final = 8

STORAGE: Final = "storage"
SWITCH: Final = "switch"
HUB_NAMES: Final = (STORAGE, SWITCH)
STORAGE_PORT: Final = "p1"
STORAGE_NETWORKS: Final = ("198.19.200.0/24", "198.19.201.0/24")
STORAGE_TARGETS: Final = ("198.19.200.250", "198.19.201.250")
STORAGE_PREFIX: Final = 24


def node_names(count: int) -> list[str]:
    return [f"spark{i}" for i in range(1, count + 1)]


def check_size(topology: str, count: int) -> None:
    """InputError unless the topology can be cabled conventionally with `count` Sparks."""
    allowed = NODE_COUNTS[topology]
    if count not in allowed:
        wanted = str(allowed.start) if len(allowed) == 1 else f"{allowed.start}..{allowed.stop - 1}"
        raise InputError(
            f"topology {topology} needs {wanted} nodes, not {count}", key="--nodes",
            fix=f"pass --nodes {allowed.start}" + ("" if len(allowed) == 1 else f" to {allowed.stop - 1}"),
        )


def hubs_of(topology: str) -> tuple[str, ...]:
    """The hub namespaces a topology needs."""
    if topology == "storage-split":
        return (STORAGE,)
    if topology == "switch":
        return (SWITCH,)
    return ()


Port = Endpoint
"""One cage of one Spark, written `spark1:p0`: the planner's Endpoint, so lab and plan name cages alike."""


@dataclass(frozen=True)
class Hub:
    """A non-Spark end of a cable: the lab's storage target or its switch."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Cable:
    """One QSFP56 cable; it carries both halves of the port(s) it joins."""

    a: Port
    b: Port | Hub

    def __str__(self) -> str:
        return f"{self.a} <-> {self.b}"

    def ports(self) -> list[Port]:
        """The Spark ports this cable occupies."""
        return [self.a] + ([self.b] if isinstance(self.b, Port) else [])

    def to_dict(self) -> dict[str, str]:
        return {"a": str(self.a), "b": str(self.b)}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Cable:
        b = data["b"]
        return cls(parse_port(data["a"]), Hub(b) if b in HUB_NAMES else parse_port(b))


def parse_port(text: str, nodes: list[str] | None = None) -> Port:
    """`spark1:p0` as a Port; with `nodes`, the node must be one of them."""
    node, sep, port = text.partition(":")
    if not sep or port not in hardware.PORTS:
        raise InputError(
            f"{text!r} is not a Spark port", fix="write NODE:p0 or NODE:p1, e.g. spark1:p0",
        )
    if nodes is not None and node not in nodes:
        raise InputError(f"this lab has no node {node!r}", fix=f"use one of {', '.join(nodes)}")
    return Port(node, port)


def parse_end(text: str, nodes: list[str], hubs: list[str]) -> Port | Hub:
    """A cable end given on the command line: a Spark port, or a hub this lab has."""
    if text in HUB_NAMES:
        if text not in hubs:
            raise InputError(
                f"this lab has no {text}", fix=f"a {text} exists only in labs of topology "
                + ("storage-split" if text == STORAGE else "switch"),
            )
        return Hub(text)
    return parse_port(text, nodes)


def conventional(topology: str, nodes: list[str]) -> list[Cable]:
    """The cables the lab plugs in at `up` for a topology."""
    check_size(topology, len(nodes))
    if topology == "direct":
        return [Cable(Port(nodes[0], "p0"), Port(nodes[1], "p0"))]
    if topology == "bond":
        return [Cable(Port(nodes[0], p), Port(nodes[1], p)) for p in hardware.PORTS]
    if topology == "ring":
        return [
            Cable(Port(node, "p0"), Port(nodes[(i + 1) % len(nodes)], "p1")) for i, node in enumerate(nodes)
        ]
    if topology == "storage-split":
        return [Cable(Port(nodes[0], "p0"), Port(nodes[1], "p0"))] + [
            Cable(Port(node, STORAGE_PORT), Hub(STORAGE)) for node in nodes
        ]
    return [Cable(Port(node, "p0"), Hub(SWITCH)) for node in nodes]
