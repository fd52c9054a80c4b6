"""Moving cables in a running lab, as a person would at the back of the rack.

A cable joins both halves of two ports; pulling it leaves both ports without carrier, plugging it
gives both ports carrier on both halves. The netdevs keep their MTU, addresses and admin state, except
the addresses of netdevs the node's own netplan configures: its renderer configures those itself.
"""

from __future__ import annotations

import dataclasses

from sparkctl import hardware
from sparkctl.errors import InputError
from sparkctl.lab import network
from sparkctl.lab.paths import LabPaths
from sparkctl.lab.state import LabState, save
from sparkctl.lab.topology import Cable, Port, parse_end, parse_port

SETTLE_TIMEOUT_S = 5.0


def _refuse_faults(state: LabState, ports: list[Port]) -> None:
    """Faults live on the netdevs a cable move re-creates: they must be cleared first."""
    ends = {
        (end.namespace, end.device)
        for port in ports
        for end in (network.spark_end(state.name, port, half) for half in hardware.HALVES)
    }
    for fault in state.faults:
        on_port = Port(fault.node, hardware.port_of(fault.device)[0]) in ports
        if on_port or any((a.namespace, a.device) in ends for a in fault.applied):
            raise InputError(
                f"{fault.target} has a {fault.kind} fault on a netdev this cable move re-creates",
                fix=f"clear it first: sparkctl lab fault {fault.target} --clear",
            )


def _left_to_the_node(paths: LabPaths, port: Port, configs: list[network.PortConfig]) -> list[network.PortConfig]:
    """The configs a re-created netdev gets from the lab: without the addresses when the node's own
    netplan configures that netdev. A real netdev keeps its addresses through a cable move and nobody
    writes them; here the netdev is new, the node's networkd configures it from its file, and the lab
    adding the same addresses at the same moment overlaps networkd's own configuration of the link,
    which makes systemd 252 fail it (6 of 12 cable moves, 0 of 12 without the lab's write)."""
    netplan = paths.node_etc(port.node) / "netplan"
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in sorted(netplan.glob("*.yaml"))]
    kept = []
    for half, config in enumerate(configs):
        device = hardware.netdev(port.port, half)
        configured = any(f"{device}:" in text for text in texts)
        kept.append(dataclasses.replace(config, addresses=()) if configured else config)
    return kept


def uncable(paths: LabPaths, state: LabState, text: str) -> Cable:
    """Pull the cable plugged into a port; both of its ends become empty cages."""
    port = parse_port(text, list(state.nodes))
    cable = state.cable_of(port)
    if cable is None:
        raise InputError(f"{port} has no cable", fix="`sparkctl lab status` lists the cables")
    _refuse_faults(state, cable.ports())
    configs = {p: _left_to_the_node(paths, p, network.port_configs(state.name, p)) for p in cable.ports()}
    for p in cable.ports():
        network.unplug(state.name, p)
    for p in cable.ports():
        network.park(state.name, p, configs[p])
    state.cables.remove(cable)
    save(paths, state)
    return cable


def cable(paths: LabPaths, state: LabState, a_text: str, b_text: str) -> Cable:
    """Plug a cable between two free ports, or between a free port and the lab's storage or switch."""
    nodes = list(state.nodes)
    new = Cable(parse_port(a_text, nodes), parse_end(b_text, nodes, state.hubs))
    if new.a == new.b:
        raise InputError(f"a cable cannot join {new.a} to itself", fix="name two different ports")
    for port in new.ports():
        existing = state.cable_of(port)
        if existing is not None:
            raise InputError(
                f"{port} is already cabled ({existing})",
                fix=f"pull that cable first: sparkctl lab uncable {port}",
            )
    _refuse_faults(state, new.ports())
    configs = {p: _left_to_the_node(paths, p, network.port_configs(state.name, p)) for p in new.ports()}
    for port in new.ports():
        network.unplug(state.name, port)
    network.plug(state.name, new, configs)
    state.cables.append(new)
    save(paths, state)
    network.settle(state.name, new, timeout=SETTLE_TIMEOUT_S)
    return new
