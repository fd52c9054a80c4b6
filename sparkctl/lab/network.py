"""The lab's wiring: the management bridge, the hubs, and veth "cables" between Spark netdevs.

Each Spark port is two netdevs (one per PCIe half), so a cable is two veth pairs: half 0 to half 0,
half 1 to half 1, each end carrying the real Spark netdev name. A port with no cable is a veth whose
far end waits, down, in the lab's `spare` namespace: the netdev exists under its Spark name, is up,
and has no carrier, as on a machine with an empty cage. Moving a cable re-creates the netdevs, so the
lab carries their MTU, admin state and addresses over, as a NIC keeps them when a cable is moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from sparkctl import hardware
from sparkctl.lab import paths, system
from sparkctl.lab.topology import STORAGE, STORAGE_PREFIX, STORAGE_TARGETS, Cable, Hub, Port

FRESH_MTU = 1500
"""A fresh Spark's fabric MTU; provisioning raises it (veth allows up to 65535)."""
HUB_MTU = 9000
"""The storage target and the switch accept jumbo frames, as real ones are set up to."""
SPARE = "spare"


@dataclass(frozen=True)
class End:
    """One end of a veth: a netdev in a namespace."""

    namespace: str
    device: str


@dataclass(frozen=True)
class PortConfig:
    """What a netdev keeps when its cable is moved: MTU, admin state, addresses."""

    mtu: int = FRESH_MTU
    up: bool = True
    addresses: tuple[str, ...] = ()


def far_device(port: Port, half: int) -> str:
    """Name of the non-Spark end of a port's half (in the spare or a hub namespace), e.g. `spark1p0h0`."""
    return f"{port.node}{port.port}h{half}"


def hub_bridge(half: int) -> str:
    return f"br{half}"


def spark_end(lab: str, port: Port, half: int) -> End:
    return End(paths.namespace(lab, port.node), hardware.netdev(port.port, half))


def spare_end(lab: str, port: Port, half: int) -> End:
    return End(paths.namespace(lab, SPARE), far_device(port, half))


def hub_end(lab: str, hub: Hub, port: Port, half: int) -> End:
    return End(paths.namespace(lab, hub.name), far_device(port, half))


def far_end(lab: str, cable: Cable | None, port: Port, half: int) -> End:
    """The other end of the veth behind `port`'s half: the peer Spark, a hub or the spare namespace."""
    if cable is None:
        return spare_end(lab, port, half)
    other = cable.b if cable.a == port else cable.a
    if isinstance(other, Hub):
        return hub_end(lab, other, port, half)
    return spark_end(lab, other, half)


def create_mgmt_bridge(name: str, host_address: IPv4Interface) -> None:
    """The root-namespace bridge every node's enP7s7 hangs off; the host is .1 on it.

    Forwarding is switched off on it, so nothing a node sends can leave this machine through the host.
    """
    system.ip("link", "add", name, "type", "bridge")
    Path(f"/proc/sys/net/ipv4/conf/{name}/forwarding").write_text("0\n", encoding="ascii")
    system.ip("address", "add", str(host_address), "dev", name)
    system.ip("link", "set", name, "up")


def create_mgmt_link(
    host_interface: str, bridge: str, namespace: str, address: IPv4Interface | None, gateway: IPv4Address
) -> None:
    """Cable a node's management port enP7s7 to the bridge, with its address and default route.

    With `address` None the port is left unconfigured and down, for the node's own NetworkManager.
    """
    system.ip(
        "link", "add", host_interface, "type", "veth",
        "peer", "name", hardware.MANAGEMENT_INTERFACE, "netns", namespace,
    )
    system.ip("link", "set", host_interface, "master", bridge, "up")
    system.ip("link", "set", "lo", "up", namespace=namespace)
    if address is None:
        return
    system.ip("address", "add", str(address), "dev", hardware.MANAGEMENT_INTERFACE, namespace=namespace)
    system.ip("link", "set", hardware.MANAGEMENT_INTERFACE, "up", namespace=namespace)
    system.ip("route", "add", "default", "via", str(gateway), namespace=namespace)


def create_hub(lab: str, hub: str) -> None:
    """A hub namespace: one bridge per half; the storage target also holds .250 on each half's network."""
    namespace = paths.namespace(lab, hub)
    system.ip("link", "set", "lo", "up", namespace=namespace)
    for half in hardware.HALVES:
        bridge = hub_bridge(half)
        system.ip("link", "add", bridge, "type", "bridge", namespace=namespace)
        if hub == STORAGE:
            address = f"{STORAGE_TARGETS[half]}/{STORAGE_PREFIX}"
            system.ip("address", "add", address, "dev", bridge, namespace=namespace)
        system.ip("link", "set", bridge, "up", namespace=namespace)


def _veth(a: End, b: End, mtu_a: int, mtu_b: int) -> None:
    system.ip(
        "link", "add", a.device, "netns", a.namespace, "mtu", str(mtu_a), "type", "veth",
        "peer", "name", b.device, "netns", b.namespace, "mtu", str(mtu_b),
    )


def configure(end: End, config: PortConfig) -> None:
    """Give a (new) Spark netdev the MTU, addresses and admin state it had before."""
    system.ip("link", "set", end.device, "mtu", str(config.mtu), namespace=end.namespace)
    for address in config.addresses:
        system.ip("address", "replace", address, "dev", end.device, namespace=end.namespace)
    system.ip("link", "set", end.device, "up" if config.up else "down", namespace=end.namespace)


def snapshot(end: End) -> PortConfig:
    """The config a Spark netdev has now (fresh defaults if it is gone)."""
    info = system.link(end.namespace, end.device)
    if info is None:
        return PortConfig()
    return PortConfig(mtu=info.mtu, up=info.up, addresses=info.addresses)


def plug(lab: str, cable: Cable, configs: dict[Port, list[PortConfig]]) -> None:
    """Create both halves of a cable between ports that have no netdevs now (see `unplug`)."""
    for half in hardware.HALVES:
        a = spark_end(lab, cable.a, half)
        if isinstance(cable.b, Hub):
            b = hub_end(lab, cable.b, cable.a, half)
            _veth(a, b, configs[cable.a][half].mtu, HUB_MTU)
            system.ip("link", "set", b.device, "master", hub_bridge(half), "up", namespace=b.namespace)
        else:
            b = spark_end(lab, cable.b, half)
            _veth(a, b, configs[cable.a][half].mtu, configs[cable.b][half].mtu)
            configure(b, configs[cable.b][half])
        configure(a, configs[cable.a][half])


def park(lab: str, port: Port, configs: list[PortConfig]) -> None:
    """Give an uncabled port its two netdevs, without carrier (far ends down in the spare namespace)."""
    for half in hardware.HALVES:
        end = spark_end(lab, port, half)
        _veth(end, spare_end(lab, port, half), configs[half].mtu, FRESH_MTU)
        configure(end, configs[half])


def port_configs(lab: str, port: Port) -> list[PortConfig]:
    """The configs of a port's two netdevs, taken before its cable is pulled."""
    return [snapshot(spark_end(lab, port, half)) for half in hardware.HALVES]


def unplug(lab: str, port: Port) -> None:
    """Delete a port's two netdevs; their far ends (peer Spark, hub or spare) go with them."""
    for half in hardware.HALVES:
        end = spark_end(lab, port, half)
        if system.link(end.namespace, end.device) is not None:
            system.ip("link", "del", end.device, namespace=end.namespace)


def settle(lab: str, cable: Cable, timeout: float) -> bool:
    """Wait until both halves of a cable show carrier wherever both of its ends are up."""

    def half_settled(half: int) -> bool:
        a = spark_end(lab, cable.a, half)
        mine = system.link(a.namespace, a.device)
        if mine is None:
            return False
        if isinstance(cable.b, Hub):
            return not mine.up or mine.carrier
        b = spark_end(lab, cable.b, half)
        theirs = system.link(b.namespace, b.device)
        if theirs is None:
            return False
        return not (mine.up and theirs.up) or (mine.carrier and theirs.carrier)

    return system.wait_for(lambda: all(half_settled(h) for h in hardware.HALVES), timeout=timeout)
