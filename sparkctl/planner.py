"""Topology -> per-node plan. Pure: no network, no files, the same answer for the same input.

Addressing is chosen to be stable. A cable's subnets are keyed by its *owner* endpoint (the end on the
node that comes first in the inventory, then p0 before p1), and a node's host number is its position
in group `sparks`. Moving one cable therefore changes the subnets of that cable only, and adding a
Spark at the end of the inventory changes nothing that was there before. Every cable gets one subnet
per PCIe half, because the two halves of a port are separate netdevs that must not share a subnet.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Interface, IPv4Network

from sparkctl import cabling, hardware, tuning
from sparkctl.environment import node_environment
from sparkctl.errors import InputError
from sparkctl.model import (
    BondPlan,
    Cable,
    ClusterPlan,
    InterfacePlan,
    Link,
    LinkEnd,
    NodePlan,
    Route,
)
from sparkctl.settings import ClusterSettings


class _Addressing:
    """Carves subnets out of the fabric pool and host addresses out of subnets."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.pool = settings.fabric_pool
        self.prefix = settings.subnet_prefix
        self.count = 2 ** (self.prefix - self.pool.prefixlen)
        self.source = settings.source

    def require(self, subnets: int, hosts: int, why: str) -> None:
        """InputError unless the pool holds `subnets` subnets of the prefix, each with room for `hosts`.

        The fix names what really has to change: a shorter sparkctl_subnet_prefix when a subnet is too
        small for the hosts (no pool, however large, helps then), else a larger pool.
        """
        size = 2 ** (32 - self.prefix)
        if subnets <= self.count and hosts <= size - 2:
            return
        widest = 32 - (hosts + 1).bit_length()  # the longest prefix with room for `hosts` (+ network, broadcast)
        prefix = min(self.prefix, widest)
        pool_prefix = prefix - (subnets - 1).bit_length()  # the longest pool with `subnets` of those
        if hosts > size - 2:
            problem = (f"/{self.prefix} subnets are too small: {why} puts {hosts} hosts in each, and a "
                       f"/{self.prefix} has room for {size - 2}")
            fix = f"set sparkctl_subnet_prefix to {widest} or less (a /{widest} has room for {2 ** (32 - widest) - 2})"
            if pool_prefix < self.pool.prefixlen:
                fix += f" with a fabric pool of /{pool_prefix} or larger"
            key = "sparkctl_subnet_prefix"
        else:
            problem = (f"{self.pool} is too small: {why} needs {subnets} subnets of /{self.prefix}, "
                       f"and it holds {self.count}")
            fix = f"use a fabric pool of /{pool_prefix} or larger"
            if widest > self.prefix:
                fix += f", or a sparkctl_subnet_prefix up to {widest} (smaller subnets, more of them)"
            key = "sparkctl_fabric_pool"
        if pool_prefix < 8:
            fix = f"{fix}; no private IPv4 range is that large, so split the cluster"
        raise InputError(problem, file=self.source(key), key=key, fix=fix)

    def subnet(self, index: int) -> IPv4Network:
        size = 2 ** (32 - self.prefix)
        return IPv4Network((int(self.pool.network_address) + index * size, self.prefix))


def host(subnet: IPv4Network, index: int) -> IPv4Interface:
    return IPv4Interface((int(subnet.network_address) + index, subnet.prefixlen))


def _port_index(port: str) -> int:
    return hardware.PORTS.index(port)


def build_plan(settings: ClusterSettings, discovered: Sequence[Cable] | None = None) -> ClusterPlan:
    """Plan every node. `discovered` is the cabling found on the nodes, used when none is pinned."""
    names = [n.name for n in settings.nodes]
    index = {n.name: n.index for n in settings.nodes}
    topology = settings.topology
    _check_size(topology, names, settings)

    if settings.cabling is not None:
        cables, source = list(settings.cabling), "pinned"
    elif discovered:
        cables, source = list(discovered), "discovered"
    else:
        storage_port = settings.storage.port if settings.storage else "p1"
        cables, source = cabling.conventional(topology, names, storage_port), "conventional"
    if topology == "switch" and settings.cabling is not None:
        raise InputError("a switch topology has no node-to-node cables", file=settings.source("sparkctl_cabling"),
                         key="sparkctl_cabling", fix="remove it and list the cabled ports in sparkctl_switch_ports")

    nodes = {
        n.name: NodePlan(name=n.name, index=n.index, management_address=n.management_address)
        for n in settings.nodes
    }
    plan = ClusterPlan(topology, settings.mtu, settings.fabric_pool, source, _sorted(cables, index), [], nodes)
    addressing = _Addressing(settings)

    if topology == "switch":
        _plan_switch(plan, settings, addressing)
    elif topology == "bond":
        _plan_bond(plan, settings, addressing)
    else:
        _plan_peer_links(plan, settings, addressing, index)
        if topology == "storage-split":
            _plan_storage(plan, settings)
        if topology == "ring":
            _plan_ring_routes(plan, names)

    _apply_overrides(plan, settings)
    _check_unique_addresses(plan, settings)
    for node in nodes.values():
        node.env = node_environment(node, topology, settings.bootstrap_interface)
        node.sysctl = {key: value for key, (value, _) in tuning.SYSCTL.items()} | node.sysctl
    return plan


def _sorted(cables: Sequence[Cable], index: dict[str, int]) -> list[Cable]:
    return sorted(cables, key=lambda c: min((index[c.a.node], c.a.port), (index[c.b.node], c.b.port)))


def _check_size(topology: str, names: list[str], settings: ClusterSettings) -> None:
    count = len(names)
    where = {"file": settings.source("sparkctl_topology"), "key": "sparkctl_topology"}
    if topology == "ring" and count not in cabling.RING_SIZES:
        raise InputError(f"a ring needs 3 to 8 Sparks, the inventory has {count}", **where,
                         fix="use direct (or bond) for 2 Sparks and switch for more than 8")
    if topology in ("direct", "bond", "storage-split") and count < 2:
        raise InputError(f"{topology} needs at least 2 Sparks, the inventory has {count}", **where,
                         fix="add the other Spark(s) to group sparks")
    if topology == "bond" and count != 2:
        raise InputError(f"a bond joins exactly 2 Sparks, the inventory has {count}", **where,
                         fix="use ring or switch for more Sparks")
    if topology == "switch" and count not in cabling.SWITCH_SIZES:
        raise InputError(f"a switch topology takes 2 to 64 Sparks, the inventory has {count}", **where,
                         fix="split the cluster")
    if topology == "storage-split" and settings.storage is None:
        raise InputError("storage-split needs the storage side described", file=settings.source("sparkctl_topology"),
                         key="sparkctl_storage",
                         fix="set sparkctl_storage: {port: p1, networks: [NET_HALF0, NET_HALF1], targets: [ADDR]}")


def _plan_peer_links(plan: ClusterPlan, settings: ClusterSettings, addressing: _Addressing,
                     index: dict[str, int]) -> None:
    storage_port = settings.storage.port if settings.topology == "storage-split" and settings.storage else None
    addressing.require(4 * len(settings.nodes), len(settings.nodes), f"{len(settings.nodes)} Sparks with 2 ports")
    cabled = {e.node for c in plan.cables for e in (c.a, c.b)}
    for name in plan.nodes:
        if name not in cabled:
            raise InputError(f"{name} has no cable in the {plan.topology} topology",
                             file=settings.source("sparkctl_cabling"), key="sparkctl_cabling",
                             fix=f"cable {name} to a peer and list that cable, or remove {name} from group sparks")
    for cable in plan.cables:
        if storage_port and storage_port in (cable.a.port, cable.b.port):
            bad = cable.a if cable.a.port == storage_port else cable.b
            raise InputError(f"{bad} is the storage port but is cabled to a Spark ({cable})",
                             file=settings.source("sparkctl_cabling"), key="sparkctl_cabling",
                             fix="cable Sparks to each other on the other port, or change sparkctl_storage.port")
        owner = min(cable.a, cable.b, key=lambda e: (index[e.node], e.port))
        slot = (index[owner.node] - 1) * 2 + _port_index(owner.port)
        for half in hardware.HALVES:
            subnet = addressing.subnet(slot * 2 + half)
            ends = [
                LinkEnd(e.node, e.port, hardware.netdev(e.port, half), host(subnet, index[e.node]))
                for e in (cable.a, cable.b)
            ]
            plan.links.append(Link("peer", cable.name, half, subnet, ends[0], ends[1]))
            for here, there in ((ends[0], ends[1]), (ends[1], ends[0])):
                plan.nodes[here.node].interfaces.append(InterfacePlan(
                    here.interface, here.port, half, "peer", plan.mtu,
                    [here.address] if here.address else [], f"{there.node}:{there.interface}",
                ))
    for node in plan.nodes.values():
        node.interfaces.sort(key=lambda i: (i.port, i.half))


def _plan_storage(plan: ClusterPlan, settings: ClusterSettings) -> None:
    storage = settings.storage
    assert storage is not None  # checked by _check_size
    for node in plan.nodes.values():
        for half in hardware.HALVES:
            net = storage.networks[half]
            address = host(net, node.index)
            targets = [t for t in storage.targets if t in net]
            if address.ip in targets:
                raise InputError(f"{node.name}'s storage address {address.ip} is a storage target",
                                 file=settings.source("sparkctl_storage"), key="sparkctl_storage.targets",
                                 fix="put the storage server on a host number above the Sparks' (e.g. .100)")
            iface = hardware.netdev(storage.port, half)
            node.interfaces.append(InterfacePlan(iface, storage.port, half, "storage", plan.mtu, [address]))
            plan.links.append(Link(
                "storage", f"{node.name}:{storage.port}-storage", half, net,
                LinkEnd(node.name, storage.port, iface, address),
                LinkEnd("storage", "", "", None), tuple(targets),
            ))
        node.interfaces.sort(key=lambda i: (i.port, i.half))


def _plan_switch(plan: ClusterPlan, settings: ClusterSettings, addressing: _Addressing) -> None:
    addressing.require(4, len(settings.nodes), f"a switch with {len(settings.nodes)} Sparks")
    for port in settings.switch_ports:
        for half in hardware.HALVES:
            subnet = addressing.subnet(_port_index(port) * 2 + half)
            iface = hardware.netdev(port, half)
            for node in plan.nodes.values():
                address = host(subnet, node.index)
                node.interfaces.append(InterfacePlan(iface, port, half, "switch", plan.mtu, [address]))
                plan.links.append(Link(
                    "switch", f"{node.name}:{port}-switch", half, subnet,
                    LinkEnd(node.name, port, iface, address), LinkEnd("switch", "", "", None),
                ))


def _plan_bond(plan: ClusterPlan, settings: ClusterSettings, addressing: _Addressing) -> None:
    bond = settings.bond
    addressing.require(1, 2, "a bond")
    subnet = addressing.subnet(0)
    for cable in plan.cables:
        if cable.a.node == cable.b.node or {cable.a.node, cable.b.node} != set(plan.nodes):
            raise InputError(f"{cable} does not join the two Sparks", file=settings.source("sparkctl_cabling"),
                             key="sparkctl_cabling", fix="a bond runs over cables between its two Sparks")
    for node in plan.nodes.values():
        ports = sorted({e.port for c in plan.cables for e in (c.a, c.b) if e.node == node.name})
        cabled = [hardware.netdev(p, h) for p in ports for h in hardware.HALVES]
        members = list(bond.members) if bond.members else cabled
        idle = [d for d in cabled if d not in members]
        if idle and not plan.warnings:
            plan.warnings.append(
                f"the bond leaves {', '.join(idle)} idle on cabled ports: a port reaches full speed only "
                "with both PCIe halves in use"
            )
        for member in members:
            if member not in cabled:
                raise InputError(f"bond member {member} sits on a port of {node.name} with no cable",
                                 file=settings.source("sparkctl_bond"), key="sparkctl_bond.members",
                                 fix=f"use members on cabled ports: {', '.join(cabled)}")
            port, half = hardware.port_of(member)
            node.interfaces.append(InterfacePlan(member, port, half, "bond-member", plan.mtu))
        node.interfaces.sort(key=lambda i: (i.port, i.half))
        node.bonds.append(BondPlan(
            bond.name, [i.name for i in node.interfaces], bond.mode, bond.transmit_hash_policy,
            bond.lacp_rate, bond.mii_monitor_interval, plan.mtu, [host(subnet, node.index)],
        ))
    a, b = (plan.nodes[n] for n in plan.nodes)
    plan.links.append(Link(
        "bond", "+".join(c.name for c in plan.cables), 0, subnet,
        LinkEnd(a.name, "", bond.name, a.bonds[0].addresses[0]),
        LinkEnd(b.name, "", bond.name, b.bonds[0].addresses[0]),
    ))


def _plan_ring_routes(plan: ClusterPlan, names: list[str]) -> None:
    """Routes to the subnets of non-neighbours, sent along the shorter way round the ring."""
    order = cabling.ring_order(plan.cables, names)
    size = len(order)
    if size < 4:
        return  # in a ring of three every node neighbours every other
    position = {name: i for i, name in enumerate(order)}

    def link_between(one: str, other: str, half: int) -> Link:
        return next(link for link in plan.links if {link.a.node, link.b.node} == {one, other} and link.half == half)

    for name in order:
        i = position[name]
        node = plan.nodes[name]
        forward, backward = order[(i + 1) % size], order[(i - 1) % size]
        for link in plan.links:
            if name in (link.a.node, link.b.node):
                continue
            j = min(position[link.a.node], position[link.b.node])
            if {position[link.a.node], position[link.b.node]} == {0, size - 1}:
                j = size - 1  # the closing cable runs from the last node to the first
            neighbour = forward if (j - i) % size <= (i - (j + 1)) % size else backward
            hop = link_between(name, neighbour, link.half)
            mine, theirs = (hop.a, hop.b) if hop.a.node == name else (hop.b, hop.a)
            node.routes.append(Route(link.subnet, str(theirs.address.ip) if theirs.address else "", mine.interface))
        node.sysctl["net.ipv4.ip_forward"] = "1"


def _apply_overrides(plan: ClusterPlan, settings: ClusterSettings) -> None:
    """Put explicit per-interface addresses (host var sparkctl_fabric_addresses) in place of planned ones."""
    for node_settings in settings.nodes:
        node = plan.nodes[node_settings.name]
        for iface, address in node_settings.fabric_addresses.items():
            key = f"sparkctl_fabric_addresses.{iface}"
            bond = next((b for b in node.bonds if b.name == iface), None)
            planned = node.interface(iface)
            if bond is not None:
                bond.addresses = [address]
            elif planned is not None and planned.role != "bond-member":
                planned.addresses = [address]
            else:
                raise InputError(f"{node.name} has no addressed interface {iface} in this plan",
                                 file=settings.source(key), key=key,
                                 fix=f"address one of: {', '.join(node.fabric_interfaces)}")
            for link in plan.links:
                for end in (link.a, link.b):
                    if end.node == node.name and end.interface == iface:
                        end.address = address
                        link.subnet = address.network
    for link in plan.links:
        ends = [e for e in (link.a, link.b) if e.address is not None]
        if len(ends) == 2 and ends[0].address and ends[1].address and ends[0].address.network != ends[1].address.network:
            raise InputError(
                f"{ends[0].node} {ends[0].interface} ({ends[0].address}) and {ends[1].node} {ends[1].interface} "
                f"({ends[1].address}) share a cable but not a subnet",
                key="sparkctl_fabric_addresses", file=settings.source("sparkctl_fabric_addresses"),
                fix="set both ends of the link in one subnet (or drop the override to use the pool)",
            )


def _check_unique_addresses(plan: ClusterPlan, settings: ClusterSettings) -> None:
    seen: dict[str, str] = {}
    nets_by_node: dict[str, dict[IPv4Network, str]] = {}
    for node in plan.nodes.values():
        entries = [(i.name, a) for i in node.interfaces for a in i.addresses]
        entries += [(b.name, a) for b in node.bonds for a in b.addresses]
        for iface, address in entries:
            owner = f"{node.name} {iface}"
            if str(address.ip) in seen:
                raise InputError(f"{address.ip} is planned on both {seen[str(address.ip)]} and {owner}",
                                 file=settings.source("sparkctl_fabric_addresses"), key="sparkctl_fabric_addresses",
                                 fix="give every fabric interface its own address")
            seen[str(address.ip)] = owner
            local = nets_by_node.setdefault(node.name, {})
            if address.network in local and local[address.network] != iface:
                raise InputError(f"{node.name} has {local[address.network]} and {iface} on one subnet "
                                 f"{address.network}", file=settings.source("sparkctl_fabric_addresses"),
                                 key="sparkctl_fabric_addresses",
                                 fix="give each PCIe half its own subnet: two twins on one subnet break routing")
            local[address.network] = iface
