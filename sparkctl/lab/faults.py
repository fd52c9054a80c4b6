"""Faults a lab can put on one Spark netdev, so verify-link and tests can prove they notice them.

- rate: a tc tbf on both ends of the netdev's veth (tbf shapes egress only, so both directions).
- loss: an iptables `statistic --mode random` DROP in raw PREROUTING wherever the netdev's traffic
  is received: on the node itself (`-i IF`) and on the far end (the peer Spark; the storage target
  or the other switch members, matched by the netdev's MAC).
- down: `ip link set IF down` (the far end loses carrier).
- mtu: a different MTU on the netdev.
Each fault records where it was applied and how to undo exactly that; netem is not in this kernel,
so there is no delay fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparkctl import hardware
from sparkctl.errors import InputError
from sparkctl.lab import network, system
from sparkctl.lab.paths import LabPaths
from sparkctl.lab.state import Applied, Fault, LabState, save
from sparkctl.lab.topology import STORAGE, SWITCH, Hub, Port

_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|tbit)$")
_RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12}
MIN_MTU = 68
MAX_MTU = 65535
TBF_LATENCY = "20ms"
MIN_BURST_BYTES = 128 * 1024
"""tbf needs a bucket of at least one GSO super-packet (64 KiB on veth), or it drops them all."""


@dataclass(frozen=True)
class Request:
    """One fault asked for on the command line: kind (rate, loss, down, mtu) and value."""

    kind: str
    value: str

    @classmethod
    def checked(cls, kind: str, value: str) -> Request:
        """A request whose value is checked before anything is changed."""
        if kind == "rate":
            parse_rate(value)
        elif kind == "loss":
            parse_loss(value)
        elif kind == "mtu":
            parse_mtu(int(value))
        return cls(kind, value)


def parse_rate(text: str) -> int:
    """`2gbit` (tc's units) as bits per second."""
    match = _RATE.match(text.strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise InputError(
            f"rate {text!r} is not understood", key="--rate", fix="write it as tc does, e.g. 2gbit or 500mbit"
        )
    return int(float(match.group(1)) * _RATE_UNITS[match.group(2)])


def parse_loss(text: str) -> float:
    """`30%` (or `30`) as a percentage strictly between 0 and 100."""
    try:
        percent = float(text.strip().rstrip("%"))
    except ValueError:
        percent = -1.0
    if not 0 < percent < 100:
        raise InputError(f"loss {text!r} is not a percentage", key="--loss", fix="pass e.g. 1% or 30%")
    return percent


def parse_mtu(value: int) -> int:
    if not MIN_MTU <= value <= MAX_MTU:
        raise InputError(f"MTU {value} is out of range", key="--mtu", fix=f"pass {MIN_MTU}..{MAX_MTU}")
    return value


def devices_of(target: str, nodes: list[str]) -> tuple[str, list[str]]:
    """`spark1:enp1s0f0np0` (one netdev) or `spark1:p0` (both halves of the port) as (node, netdevs)."""
    node, sep, what = target.partition(":")
    if not sep or node not in nodes:
        raise InputError(
            f"{target!r} names no node of this lab",
            fix=f"write NODE:IFACE with NODE one of {', '.join(nodes)}",
        )
    if what in hardware.PORTS:
        return node, list(hardware.NETDEVS[what])
    if what not in hardware.ALL_NETDEVS:
        raise InputError(
            f"{what!r} is not a Spark fabric netdev",
            fix=f"use one of {', '.join(hardware.ALL_NETDEVS)} or p0/p1",
        )
    return node, [what]


def _receivers(state: LabState, node: str, device: str) -> list[tuple[str, list[str]]]:
    """Where the netdev's traffic arrives: (namespace, iptables match) for each receiving side."""
    port_name, half = hardware.port_of(device)
    port = Port(node, port_name)
    end = network.spark_end(state.name, port, half)
    found = [(end.namespace, ["-i", end.device])]
    cable = state.cable_of(port)
    if cable is None:
        return found
    other = cable.b if cable.a == port else cable.a
    if isinstance(other, Port):
        peer = network.spark_end(state.name, other, half)
        return found + [(peer.namespace, ["-i", peer.device])]
    info = system.link(end.namespace, end.device)
    from_mac = ["-m", "mac", "--mac-source", info.mac] if info else []
    if other.name == STORAGE:
        hub = network.hub_end(state.name, other, port, half)
        return found + [(hub.namespace, ["-i", network.hub_bridge(half), *from_mac])]
    members = [c.a for c in state.cables if c.b == Hub(SWITCH) and c.a != port]
    for member in members:
        peer = network.spark_end(state.name, member, half)
        found.append((peer.namespace, ["-i", peer.device, *from_mac]))
    return found


def _iptables(namespace: str, action: str, rule: list[str]) -> None:
    system.in_namespace(namespace, "iptables", "-w", "-t", "raw", action, "PREROUTING", *rule)


def apply(state: LabState, node: str, device: str, request: Request) -> Fault:
    """Put one fault on one netdev and return its record (the caller stores it in state)."""
    port_name, half = hardware.port_of(device)
    port = Port(node, port_name)
    end = network.spark_end(state.name, port, half)
    fault = Fault(node=node, device=device, kind=request.kind, value=request.value)
    if request.kind == "rate":
        bits = parse_rate(request.value)
        burst = max(bits // 8 // 250, MIN_BURST_BYTES)
        for place in (end, network.far_end(state.name, state.cable_of(port), port, half)):
            system.run([
                "tc", "-n", place.namespace, "qdisc", "replace", "dev", place.device, "root",
                "tbf", "rate", f"{bits}bit", "burst", str(burst), "latency", TBF_LATENCY,
            ])
            fault.applied.append(Applied(place.namespace, place.device))
    elif request.kind == "loss":
        probability = f"{parse_loss(request.value) / 100:.6f}"
        for namespace, match in _receivers(state, node, device):
            rule = [
                *match, "-m", "statistic", "--mode", "random", "--probability", probability,
                "-m", "comment", "--comment", f"sparkctl lab {state.name} {node}:{device}", "-j", "DROP",
            ]
            _iptables(namespace, "-A", rule)
            fault.applied.append(Applied(namespace, match[1], rule=rule))
    elif request.kind == "down":
        system.ip("link", "set", end.device, "down", namespace=end.namespace)
        fault.applied.append(Applied(end.namespace, end.device))
    else:
        info = system.link(end.namespace, end.device)
        previous = info.mtu if info else network.FRESH_MTU
        mtu = parse_mtu(int(request.value))
        system.ip("link", "set", end.device, "mtu", str(mtu), namespace=end.namespace)
        fault.applied.append(Applied(end.namespace, end.device, previous_mtu=previous))
    return fault


def clear(fault: Fault) -> None:
    """Undo a fault where it was applied; places that no longer exist are already clean."""
    for place in fault.applied:
        if not system.namespace_exists(place.namespace):
            continue
        if fault.kind == "rate":
            if system.link(place.namespace, place.device) is not None:
                system.run(
                    ["tc", "-n", place.namespace, "qdisc", "del", "dev", place.device, "root"], check=False
                )
        elif fault.kind == "loss":
            system.in_namespace(
                place.namespace, "iptables", "-w", "-t", "raw", "-D", "PREROUTING", *place.rule, check=False
            )
        elif system.link(place.namespace, place.device) is None:
            continue
        elif fault.kind == "down":
            system.ip("link", "set", place.device, "up", namespace=place.namespace)
        else:
            mtu = place.previous_mtu or network.FRESH_MTU
            system.ip("link", "set", place.device, "mtu", str(mtu), namespace=place.namespace)


def inject(paths: LabPaths, state: LabState, target: str, request: Request) -> list[Fault]:
    """Apply a fault to a netdev (or both halves of a port), replacing a fault of the same kind there."""
    node, devices = devices_of(target, list(state.nodes))
    added: list[Fault] = []
    for device in devices:
        for old in [f for f in state.faults if (f.node, f.device, f.kind) == (node, device, request.kind)]:
            clear(old)
            state.faults.remove(old)
        fault = apply(state, node, device, request)
        state.faults.append(fault)
        save(paths, state)
        added.append(fault)
    return added


def remove(paths: LabPaths, state: LabState, target: str) -> list[Fault]:
    """Clear every fault on a netdev (or on both halves of a port)."""
    node, devices = devices_of(target, list(state.nodes))
    cleared = [f for f in state.faults if f.node == node and f.device in devices]
    for fault in cleared:
        clear(fault)
        state.faults.remove(fault)
        save(paths, state)
    return cleared
