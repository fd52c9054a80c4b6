"""The typed plan of a Spark cluster: what every node's fabric should look like.

The planner produces these objects; the templates, the Ansible plugin, `sparkctl plan --json` and
verify-link consume them. `to_dict()` is the one serialised form (the JSON schema of `sparkctl plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from sparkctl import hardware

TOPOLOGIES = ("direct", "bond", "ring", "storage-split", "switch")


@dataclass(frozen=True, order=True)
class Endpoint:
    """One cage of one node, written `node:port` (e.g. `spark1:p0`)."""

    node: str
    port: str

    def __str__(self) -> str:
        return f"{self.node}:{self.port}"


@dataclass(frozen=True)
class Cable:
    """A QSFP56 cable between two cages; `a` is the endpoint that sorts first, so a cable has one name."""

    a: Endpoint
    b: Endpoint

    @classmethod
    def between(cls, one: Endpoint, other: Endpoint) -> Cable:
        first, second = sorted((one, other), key=lambda e: (e.node, e.port))
        return cls(first, second)

    @property
    def name(self) -> str:
        return f"{self.a}-{self.b}"

    def __str__(self) -> str:
        return self.name


@dataclass
class LinkEnd:
    """One side of a link: the node, its port and netdev, and the address planned there."""

    node: str
    port: str
    interface: str
    address: IPv4Interface | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "port": self.port,
            "interface": self.interface,
            "address": str(self.address) if self.address else None,
        }


@dataclass
class Link:
    """One PCIe half of a cable (or of a node's cable to a switch or storage): one subnet, two ends."""

    kind: str  # "peer" | "switch" | "storage"
    cable: str
    half: int
    subnet: IPv4Network
    a: LinkEnd
    b: LinkEnd
    targets: tuple[IPv4Address, ...] = ()
    """Storage links: the servers in this half's subnet the node must reach (the far end has no netdev of ours)."""

    @property
    def name(self) -> str:
        far = f"{self.b.node}:{self.b.interface}" if self.b.interface else self.b.node
        return f"{self.a.node}:{self.a.interface}-{far}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "cable": self.cable,
            "half": self.half,
            "subnet": str(self.subnet),
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "targets": [str(t) for t in self.targets],
        }


@dataclass(frozen=True)
class Route:
    to: IPv4Network
    via: str
    interface: str

    def to_dict(self) -> dict[str, Any]:
        return {"to": str(self.to), "via": self.via, "interface": self.interface}


@dataclass
class InterfacePlan:
    """A fabric netdev on one node. `role` says what it carries."""

    name: str
    port: str
    half: int
    role: str  # "peer" | "switch" | "storage" | "bond-member"
    mtu: int
    addresses: list[IPv4Interface] = field(default_factory=list)
    peer: str | None = None  # "node:interface" on the other end, when it is a Spark

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "half": self.half,
            "role": self.role,
            "mtu": self.mtu,
            "addresses": [str(a) for a in self.addresses],
            "peer": self.peer,
            "rdma_device": hardware.RDMA_DEVICES[self.name],
        }


@dataclass
class BondPlan:
    name: str
    members: list[str]
    mode: str
    transmit_hash_policy: str
    lacp_rate: str
    mii_monitor_interval: int
    mtu: int
    addresses: list[IPv4Interface] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "members": list(self.members),
            "mode": self.mode,
            "transmit_hash_policy": self.transmit_hash_policy,
            "lacp_rate": self.lacp_rate,
            "mii_monitor_interval": self.mii_monitor_interval,
            "mtu": self.mtu,
            "addresses": [str(a) for a in self.addresses],
        }


@dataclass
class NodePlan:
    """Everything sparkctl configures on one node. The management interface is recorded, never changed."""

    name: str
    index: int
    management_address: str
    interfaces: list[InterfacePlan] = field(default_factory=list)
    bonds: list[BondPlan] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    sysctl: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def interface(self, name: str) -> InterfacePlan | None:
        return next((i for i in self.interfaces if i.name == name), None)

    @property
    def fabric_interfaces(self) -> list[str]:
        """Every netdev (and bond) this plan configures, the set a provisioning run may touch."""
        return [i.name for i in self.interfaces] + [b.name for b in self.bonds]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "management": {"interface": hardware.MANAGEMENT_INTERFACE, "address": self.management_address},
            "interfaces": [i.to_dict() for i in self.interfaces],
            "bonds": [b.to_dict() for b in self.bonds],
            "routes": [r.to_dict() for r in self.routes],
            "sysctl": dict(self.sysctl),
            "env": dict(self.env),
            "fabric_interfaces": self.fabric_interfaces,
        }


@dataclass
class ClusterPlan:
    topology: str
    mtu: int
    fabric_pool: IPv4Network
    cabling_source: str  # "pinned" | "discovered" | "conventional"
    cables: list[Cable]
    links: list[Link]
    nodes: dict[str, NodePlan]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topology": self.topology,
            "mtu": self.mtu,
            "fabric_pool": str(self.fabric_pool),
            "cabling_source": self.cabling_source,
            "cables": [c.name for c in self.cables],
            "links": [link.to_dict() for link in self.links],
            "nodes": {name: node.to_dict() for name, node in self.nodes.items()},
            "warnings": list(self.warnings),
        }
