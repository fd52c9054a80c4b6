"""Turn inventory variables into checked, typed cluster settings.

Every `sparkctl_*` variable is read and checked here, once, so the planner can trust its input and
every mistake is reported with the file and key that hold it and what to write instead. Cluster-wide
settings must be the same on every Spark (they normally live in group_vars/sparks.yml).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_interface, ip_network
from pathlib import Path
from typing import Any, TypeVar

from sparkctl import hardware, validate
from sparkctl.errors import InputError
from sparkctl.inventory import HostVars, Inventory
from sparkctl.model import TOPOLOGIES, Cable, Endpoint
from sparkctl.validate import Invalid, short

T = TypeVar("T")

DEFAULT_MTU = 9000
MTU_RANGE = (1280, 9216)
DEFAULT_POOL = "10.20.0.0/16"
DEFAULT_SUBNET_PREFIX = 24
BOND_MODES = ("802.3ad", "balance-rr", "active-backup", "balance-xor", "broadcast", "balance-tlb", "balance-alb")
HASH_POLICIES = ("layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4")
LACP_RATES = ("slow", "fast")
MII_INTERVAL_MAX_MS = 10000
MANAGEMENT_PREFIX_ASSUMED = 24
"""The management network around each ansible_host when sparkctl_management_network does not say."""
RESERVED_NETWORKS = tuple(IPv4Network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
))
"""This-network, loopback, link-local, multicast and reserved space: never routable fabric subnets."""


@dataclass(frozen=True)
class BondSettings:
    name: str = "bond0"
    members: tuple[str, ...] | None = None  # None: every netdev of the cabled ports
    mode: str = "802.3ad"
    transmit_hash_policy: str = "layer3+4"
    lacp_rate: str = "fast"
    mii_monitor_interval: int = 100


@dataclass(frozen=True)
class StorageSettings:
    port: str
    networks: tuple[IPv4Network, IPv4Network]
    targets: tuple[IPv4Address, ...]


@dataclass(frozen=True)
class NodeSettings:
    name: str
    index: int  # 1-based position in group `sparks`; the host part of its fabric addresses
    management_address: str
    management_ip: IPv4Address  # management_address resolved
    fabric_addresses: dict[str, IPv4Interface] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterSettings:
    topology: str
    mtu: int
    fabric_pool: IPv4Network
    subnet_prefix: int
    cabling: tuple[Cable, ...] | None
    bond: BondSettings
    storage: StorageSettings | None
    switch_ports: tuple[str, ...]
    bootstrap_interface: str
    management_network: IPv4Network | None
    nodes: tuple[NodeSettings, ...]
    source: Callable[[str], str]  # where a cluster key is set, for error messages

    def node(self, name: str) -> NodeSettings:
        return next(n for n in self.nodes if n.name == name)


class _Reader:
    """Reads one host's variables and raises InputError naming file and key."""

    def __init__(self, host: HostVars, fallback: Path) -> None:
        self.host = host
        self.fallback = fallback

    def where(self, key: str) -> str:
        """FILE:LINE of the value of `key`, else the hosts file."""
        return self.host.location(key) or str(self.fallback)

    def fail(self, key: str, message: str, fix: str) -> InputError:
        return InputError(message, file=self.where(key), key=key, fix=fix)

    def get(self, key: str, default: Any = None) -> Any:
        return self.host.values.get(key, default)

    def typed(self, key: str, kind: type[T], default: T, fix: str) -> T:
        value = self.host.values.get(key, default)
        if kind is int and isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(key, f"must be {kind.__name__}, found {short(value)}", fix)
        return value

    def check(self, key: str, rule: Callable[..., T], value: Any, *args: Any) -> T:
        """`value` passed through one of sparkctl.validate's rules, its failure named by file and key."""
        try:
            return rule(value, *args)
        except Invalid as exc:
            raise self.fail(key, exc.message, exc.fix) from None

    def network(self, key: str, value: Any, fix: str) -> IPv4Network:
        try:
            net = ip_network(str(value), strict=True)
        except ValueError as exc:
            raise self.fail(key, f"{short(value)} is not a valid network ({exc})", fix) from None
        if not isinstance(net, IPv4Network):
            raise self.fail(key, f"{short(value)} is not an IPv4 network", fix)
        reserved = next((r for r in RESERVED_NETWORKS if net.overlaps(r)), None)
        if reserved is not None:
            raise self.fail(key, f"{net} overlaps {reserved}, which is not usable for a fabric",
                            "use private space such as 10.20.0.0/16")
        return net


def parse_endpoint(text: str, where: _Reader, key: str, nodes: Mapping[str, Any]) -> Endpoint:
    node, sep, port = str(text).strip().partition(":")
    if not sep or port not in hardware.PORTS:
        raise where.fail(key, f"{short(text)} is not NODE:PORT", "write e.g. spark1:p0 (ports are p0 and p1)")
    if node not in nodes:
        raise where.fail(key, f"{short(text)} names {short(node)}, which is not in group sparks",
                         f"use one of: {', '.join(nodes)}")
    return Endpoint(node, port)


def parse_cabling(value: Any, where: _Reader, key: str, nodes: Mapping[str, Any]) -> tuple[Cable, ...]:
    """Cables written `"spark1:p0 spark2:p0"` (or with `-`, `<->` between); each port at most once."""
    if not isinstance(value, list):
        raise where.fail(key, f"must be a list of cables, found {short(value)}", 'write e.g. ["spark1:p0 spark2:p0"]')
    cables: list[Cable] = []
    used: dict[Endpoint, int] = {}
    for number, item in enumerate(value):
        item_key = f"{key}[{number}]"
        parts = item.replace("<->", " ").replace(" - ", " ").split() if isinstance(item, str) else []
        if len(parts) != 2:
            raise where.fail(item_key, f"{short(item)} is not a cable",
                             'write "NODE:PORT NODE:PORT", e.g. "spark1:p0 spark2:p0"')
        one, other = (parse_endpoint(p, where, item_key, nodes) for p in parts)
        if one.node == other.node:
            raise where.fail(item_key, f"{short(item)} connects {one.node} to itself", "connect two different Sparks")
        for end in (one, other):
            if end in used:
                raise where.fail(item_key, f"port {end} is cabled twice (also in {key}[{used[end]}])",
                                 "a QSFP56 cage holds one cable: remove one of the two entries")
            used[end] = number
        cables.append(Cable.between(one, other))
    return tuple(cables)


def _fabric_addresses(reader: _Reader) -> dict[str, IPv4Interface]:
    key = "sparkctl_fabric_addresses"
    raw = reader.get(key, {}) or {}
    if not isinstance(raw, dict):
        raise reader.fail(key, f"must be a mapping of interface to address, found {short(raw)}",
                          "write e.g. {enp1s0f0np0: 10.20.0.1/24}")
    allowed = (*hardware.ALL_NETDEVS, "bond0")
    out: dict[str, IPv4Interface] = {}
    for iface, value in raw.items():
        if iface not in allowed and not str(iface).startswith("bond"):
            raise reader.fail(key, f"{short(iface)} is not a fabric interface", f"use one of: {', '.join(allowed)}")
        iface = reader.check(key, validate.interface_name, iface)
        ip, _, prefix = value.partition("/") if isinstance(value, str) else ("", "", "")
        reader.check(f"{key}.{iface}", validate.ipv4_address, ip)
        try:
            addr = ip_interface(value)
        except ValueError:
            addr = None
        if not isinstance(addr, IPv4Interface) or not prefix.isdigit():
            raise reader.fail(f"{key}.{iface}", f"{short(value)} is not an IPv4 address with prefix",
                              "write e.g. 10.0.0.1/24")
        if addr.network.prefixlen <= 30 and addr.ip in (addr.network.network_address, addr.network.broadcast_address):
            raise reader.fail(f"{key}.{iface}", f"{addr.ip} is the network or broadcast address of {addr.network}",
                              f"use a host address between {addr.network[1]} and {addr.network[-2]}")
        reader.network(f"{key}.{iface}", addr.network, "use private space such as 10.0.0.1/24")
        out[iface] = addr
    return out


def _bond(reader: _Reader) -> BondSettings:
    key = "sparkctl_bond"
    raw = reader.get(key, {}) or {}
    if not isinstance(raw, dict):
        raise reader.fail(key, f"must be a mapping, found {short(raw)}", "write e.g. {mode: 802.3ad}")
    unknown = set(raw) - {"name", "members", "mode", "transmit_hash_policy", "lacp_rate", "mii_monitor_interval"}
    if unknown:
        raise reader.fail(f"{key}.{short(min(unknown, key=str))}", "is not a bond setting",
                          "use name, members, mode, transmit_hash_policy, lacp_rate, mii_monitor_interval")
    defaults = BondSettings()
    mode = str(raw.get("mode", defaults.mode))
    if mode not in BOND_MODES:
        raise reader.fail(f"{key}.mode", f"{short(mode)} is not a bond mode", f"use one of: {', '.join(BOND_MODES)}")
    policy = str(raw.get("transmit_hash_policy", defaults.transmit_hash_policy))
    if policy not in HASH_POLICIES:
        raise reader.fail(f"{key}.transmit_hash_policy", f"{short(policy)} is not a hash policy",
                          f"use one of: {', '.join(HASH_POLICIES)}")
    rate = str(raw.get("lacp_rate", defaults.lacp_rate))
    if rate not in LACP_RATES:
        raise reader.fail(f"{key}.lacp_rate", f"{short(rate)} is not a LACP rate", "use slow or fast")
    members = raw.get("members")
    if members is not None:
        if not isinstance(members, list) or not members:
            raise reader.fail(f"{key}.members", f"must be a non-empty list, found {short(members)}",
                              "write e.g. [enp1s0f0np0, enp1s0f1np1]")
        for member in members:
            if member not in hardware.ALL_NETDEVS:
                raise reader.fail(f"{key}.members", f"{short(member)} is not a ConnectX-7 netdev",
                                  f"use of: {', '.join(hardware.ALL_NETDEVS)}")
        members = tuple(str(m) for m in members)
    name = reader.check(f"{key}.name", validate.interface_name, raw.get("name", defaults.name))
    if not name.startswith("bond"):
        raise reader.fail(f"{key}.name", f"{short(name)} is not a usable bond name", "use e.g. bond0")
    interval = reader.check(f"{key}.mii_monitor_interval", validate.integer,
                            raw.get("mii_monitor_interval", defaults.mii_monitor_interval), 0, MII_INTERVAL_MAX_MS, 100)
    return BondSettings(name, members, mode, policy, rate, interval)


def _storage(reader: _Reader) -> StorageSettings | None:
    key = "sparkctl_storage"
    raw = reader.get(key)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise reader.fail(key, f"must be a mapping, found {short(raw)}",
                          "write {port: p1, networks: [NET_HALF0, NET_HALF1], targets: [ADDR]}")
    port = str(raw.get("port", "p1"))
    if port not in hardware.PORTS:
        raise reader.fail(f"{key}.port", f"{short(port)} is not a port", "use p0 or p1")
    networks = raw.get("networks")
    if not isinstance(networks, list) or len(networks) != 2:
        raise reader.fail(f"{key}.networks", f"must list two networks, one per PCIe half, found {short(networks)}",
                          "write e.g. [10.30.0.0/24, 10.31.0.0/24]")
    nets = tuple(reader.network(f"{key}.networks", n, "write a network such as 10.30.0.0/24") for n in networks)
    if nets[0].overlaps(nets[1]):
        raise reader.fail(f"{key}.networks", "the two halves share a subnet",
                          "give each PCIe half its own subnet (two twins on one subnet break routing)")
    targets = raw.get("targets", [])
    if not isinstance(targets, list):
        raise reader.fail(f"{key}.targets", f"must be a list of addresses, found {short(targets)}",
                          "write e.g. [10.30.0.100]")
    parsed: list[IPv4Address] = []
    for target in targets:
        addr = reader.check(f"{key}.targets", validate.ipv4_address, target)
        if not any(addr in n for n in nets):
            raise reader.fail(f"{key}.targets", f"{target} is in neither storage network",
                              f"use an address inside {nets[0]} or {nets[1]}")
        parsed.append(addr)
    return StorageSettings(port, (nets[0], nets[1]), tuple(parsed))


CLUSTER_KEYS = (
    "sparkctl_topology", "sparkctl_mtu", "sparkctl_fabric_pool", "sparkctl_subnet_prefix", "sparkctl_cabling",
    "sparkctl_bond", "sparkctl_storage", "sparkctl_switch_ports", "sparkctl_bootstrap_interface",
    "sparkctl_management_network",
)
NUMBERS = {
    "sparkctl_link_speed_mbps": (1, 1_600_000, hardware.LINK_SPEED_MBPS),
    "sparkctl_min_half_gbps": (0, 1600, 80),
    "sparkctl_min_cable_gbps": (0, 1600, 160),
    "sparkctl_max_loss_percent": (0, 100, 0),
    "sparkctl_fabric_confirm_seconds": (10, 3600, 60),
    "sparkctl_fabric_settle_seconds": (1, 600, 15),
    "sparkctl_fabric_management_timeout": (1, 600, 15),
}
"""Verify-link's and the fabric apply's figures, (lowest, highest, example): checked with the rest so `plan`
catches them too."""


def _ssh_settings(reader: _Reader) -> None:
    """The ssh settings sparkctl itself reads (ssh.py), checked so a typo is a message, not a traceback."""
    if reader.get("ansible_port") is not None:
        reader.check("ansible_port", validate.integer, reader.get("ansible_port"), 1, 65535, 22)
    args = reader.get("ansible_ssh_common_args")
    if args is not None:
        try:
            shlex.split(str(args))
        except ValueError as exc:
            raise reader.fail("ansible_ssh_common_args", f"cannot be split into arguments ({exc})",
                              "balance the quotes, e.g. -o ProxyJump='admin@bastion'") from None



def read_settings(inventory: Inventory, topology: str | None = None) -> ClusterSettings:
    """Check every sparkctl variable of the inventory and return the cluster settings."""
    hosts = list(inventory)
    first = _Reader(hosts[0], inventory.hosts_file)
    for other in hosts[1:]:
        for key in CLUSTER_KEYS:
            if other.values.get(key) != hosts[0].values.get(key):
                where = other.location(key) or hosts[0].location(key) or inventory.hosts_file
                raise InputError(
                    f"differs between {hosts[0].name} and {other.name}", file=where, key=key,
                    fix="cluster settings must be the same on every Spark: set it once in group_vars/sparks.yml",
                )

    chosen = topology or first.get("sparkctl_topology", "direct")
    if chosen not in TOPOLOGIES:
        if topology:
            raise InputError(f"unknown topology {short(chosen)}", key="--topology", fix=f"use one of: {', '.join(TOPOLOGIES)}")
        raise first.fail("sparkctl_topology", f"unknown topology {short(chosen)}", f"use one of: {', '.join(TOPOLOGIES)}")

    mtu = first.typed("sparkctl_mtu", int, DEFAULT_MTU, "write a whole number such as 9000")
    if not MTU_RANGE[0] <= mtu <= MTU_RANGE[1]:
        raise first.fail("sparkctl_mtu", f"{mtu} is out of range {MTU_RANGE[0]}-{MTU_RANGE[1]}",
                         "use 9000 (jumbo frames) unless a switch on the path needs less")

    pool = first.network("sparkctl_fabric_pool", first.get("sparkctl_fabric_pool", DEFAULT_POOL),
                         "write a network such as 10.20.0.0/16 (host bits zero)")
    prefix = first.typed("sparkctl_subnet_prefix", int, DEFAULT_SUBNET_PREFIX, "write e.g. 24")
    if not pool.prefixlen <= prefix <= 30:
        raise first.fail("sparkctl_subnet_prefix", f"/{prefix} does not fit in the pool {pool}",
                         f"use a prefix between /{pool.prefixlen} and /30")

    names = {h.name: h for h in hosts}
    cabling_raw = first.get("sparkctl_cabling")
    cabling = None if cabling_raw is None else parse_cabling(cabling_raw, first, "sparkctl_cabling", names)

    switch_ports_raw = first.get("sparkctl_switch_ports", ["p0"])
    if not isinstance(switch_ports_raw, list) or not switch_ports_raw or any(
        p not in hardware.PORTS for p in switch_ports_raw
    ) or len(set(switch_ports_raw)) != len(switch_ports_raw):
        raise first.fail("sparkctl_switch_ports", f"{short(switch_ports_raw)} is not a list of ports",
                         "write [p0] or [p0, p1]")
    bootstrap = first.check("sparkctl_bootstrap_interface", validate.interface_name,
                            first.get("sparkctl_bootstrap_interface", hardware.MANAGEMENT_INTERFACE))
    if first.get("sparkctl_fabric_state_dir") is not None:
        first.check("sparkctl_fabric_state_dir", validate.state_dir, first.get("sparkctl_fabric_state_dir"))
    for key, (low, high, example) in NUMBERS.items():
        if first.get(key) is not None:
            first.check(key, validate.number, first.get(key), low, high, example)
    mgmt_net_raw = first.get("sparkctl_management_network")
    mgmt_net = None if mgmt_net_raw is None else first.network(
        "sparkctl_management_network", mgmt_net_raw, "write the management LAN, e.g. 192.168.1.0/24")

    nodes: list[NodeSettings] = []
    readers: dict[str, _Reader] = {}
    seen_mgmt: dict[str, str] = {}
    for index, host in enumerate(hosts, start=1):
        reader = readers[host.name] = _Reader(host, inventory.hosts_file)
        reader.check(f"all.children.sparks.hosts.{short(host.name)}", validate.host_name, host.name)
        mgmt = host.values.get("ansible_host")
        if mgmt is None:
            raise reader.fail("ansible_host", f"{host.name} has no management address",
                              f"set ansible_host for {host.name} to the address of its {hardware.MANAGEMENT_INTERFACE}")
        mgmt = reader.check("ansible_host", validate.host_name, mgmt)
        mgmt_ip = reader.check("ansible_host", validate.resolve_ipv4, mgmt)
        _ssh_settings(reader)
        if mgmt in seen_mgmt:
            raise reader.fail("ansible_host", f"{host.name} and {seen_mgmt[mgmt]} share the address {mgmt}",
                              "give every Spark its own management address")
        seen_mgmt[mgmt] = host.name
        nodes.append(NodeSettings(host.name, index, mgmt, mgmt_ip, _fabric_addresses(reader)))

    settings = ClusterSettings(
        topology=chosen, mtu=mtu, fabric_pool=pool, subnet_prefix=prefix, cabling=cabling,
        bond=_bond(first), storage=_storage(first), switch_ports=tuple(switch_ports_raw),
        bootstrap_interface=bootstrap, management_network=mgmt_net, nodes=tuple(nodes),
        source=lambda key: "--topology" if key == "sparkctl_topology" and topology else str(first.where(key)),
    )
    _check_management_overlap(settings, first, readers)
    return settings


def _check_management_overlap(settings: ClusterSettings, first: _Reader, readers: dict[str, _Reader]) -> None:
    """The fabric must never claim part of the management network: that would cut the node off.

    The management network is sparkctl_management_network when set, else the /24 around each node's
    (resolved) ansible_host, the size nearly every office or home LAN has.
    """
    fabric = [("sparkctl_fabric_pool", settings.fabric_pool)]
    if settings.storage:
        fabric += [("sparkctl_storage.networks", n) for n in settings.storage.networks]
    for node in settings.nodes:
        mgmt = node.management_ip
        network = settings.management_network or IPv4Network((mgmt, MANAGEMENT_PREFIX_ASSUMED), strict=False)
        said = "sparkctl_management_network" if settings.management_network else \
            f"assumed /{MANAGEMENT_PREFIX_ASSUMED}; set sparkctl_management_network if yours differs"
        overlaps = [(first, key, net) for key, net in fabric if net.overlaps(network) or mgmt in net]
        overlaps += [(readers[other.name], f"sparkctl_fabric_addresses.{iface}", addr.network)
                     for other in settings.nodes for iface, addr in other.fabric_addresses.items()
                     if addr.network.overlaps(network) or mgmt in addr.network]
        if overlaps:
            reader, key, net = overlaps[0]
            raise reader.fail(key, f"{net} overlaps the management network {network} ({said}) of {node.name}, "
                              f"whose management address is {mgmt}",
                              "choose a fabric network apart from the management network")
