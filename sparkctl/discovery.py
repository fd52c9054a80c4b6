"""The cabling the Sparks found by probing, merged from every node's reports and checked against the pins.

Each node probes each of its fabric netdevs at once (`sparkctl.node.peer_probe`) and reports whom it
heard: a node name and the netdev that node sent from. Both PCIe halves of one cage hear the same far
cage, so a cable is a pair of cages (`node:port`), and both ends of a cable report it. One cage that
hears two Sparks means a switch, not a cable. A pinned `sparkctl_cabling` that the wires contradict is
named cable by cable, both ways: a wire the pins do not have, and a pin no probe frame crossed.

In a storage split the storage cage goes to a storage switch or server: what it hears is not a cable. Which
cage that really is, is learnt from the storage servers themselves (each probe asks for their addresses by
ARP, and only the owner answers), so cages swapped between peer and storage are named instead of planned
over.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sparkctl import hardware
from sparkctl.errors import InputError
from sparkctl.model import Cable, Endpoint


class CablingContradicted(InputError):
    """What the wires say and what the inventory pins (or the topology expects) disagree."""


def _cage(node: str, netdev: str) -> Endpoint | None:
    try:
        return Endpoint(node, hardware.port_of(netdev)[0])
    except (KeyError, ValueError):
        return None


def heard_by_cage(node: str, reports: Iterable[Mapping[str, Any]]) -> dict[Endpoint, list[Endpoint]]:
    """Each probed cage of `node` -> the far cages it heard, in the order first heard."""
    heard: dict[Endpoint, list[Endpoint]] = {}
    for report in reports:
        local = _cage(node, str(report.get("iface", "")))
        if local is None:
            continue
        far = heard.setdefault(local, [])
        for entry in report.get("heard", []):
            remote = _cage(str(entry.get("node")), str(entry.get("iface")))
            if remote is not None and remote not in far:
                far.append(remote)
    return heard


def probe_errors(reports_by_node: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    return [f"peer_probe failed on {node}: {report['error']}"
            for node, reports in reports_by_node.items() for report in reports if report.get("error")]


def storage_answered(node: str, reports: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ports of `node` on which some storage server answered the probe's ARP request, sorted."""
    return sorted({cage.port for report in reports if report.get("answered")
                   if (cage := _cage(node, str(report.get("iface", "")))) is not None})


def storage_cage_moved(reports_by_node: Mapping[str, Sequence[Mapping[str, Any]]], port: str) -> list[str]:
    """Each node whose storage servers answer on a cage other than the storage `port` the inventory names."""
    moved = []
    for node, reports in reports_by_node.items():
        answered = storage_answered(node, reports)
        if answered and port not in answered:
            moved.append(f"{node}'s storage servers answer on {' and '.join(answered)}, not on {port}")
    return moved


def discovered_cables(reports_by_node: Mapping[str, Sequence[Mapping[str, Any]]],
                      storage_port: str | None = None) -> list[Cable]:
    """Every cable some node heard, once, sorted; a cage hearing several Sparks is an error. What the storage
    cage (`storage_port`, in a storage split) hears is not a cable and is left out."""
    cables: dict[str, Cable] = {}
    crowded = []
    for node, reports in reports_by_node.items():
        for local, far in heard_by_cage(node, reports).items():
            if local.port == storage_port:
                continue
            if len(far) > 1:
                crowded.append(f"{local} hears {' and '.join(str(e) for e in far)}")
            elif far:
                cable = Cable.between(local, far[0])
                cables[cable.name] = cable
    if crowded:
        raise CablingContradicted("; ".join(crowded) + ": a direct cable joins exactly two ports",
                                  key="sparkctl_topology", fix="if the ports go to a switch, set sparkctl_topology: switch")
    return [cables[name] for name in sorted(cables)]


def _shown(cable: Cable) -> str:
    return f"{cable.a} <-> {cable.b}"


def contradictions(found: Sequence[Cable], pinned: Sequence[Cable], probed_nodes: Collection[str]) -> list[str]:
    """Each way the wires and the pinned cabling differ. A pin between nodes outside this run is not judged."""
    problems = []
    for cable in found:
        if cable in pinned:
            continue
        here = [p for p in pinned if {p.a, p.b} & {cable.a, cable.b}]
        problems.append(f"found a cable {_shown(cable)}, but sparkctl_cabling "
                        + ("pins " + " and ".join(_shown(p) for p in here) if here else "has no cable on either port"))
    for cable in pinned:
        if cable not in found and {cable.a.node, cable.b.node} <= set(probed_nodes):
            problems.append(f"sparkctl_cabling pins {_shown(cable)}, but no probe frame crossed it "
                            "(unplugged, wrong port, or link down)")
    return problems


def as_discovered(cables: Iterable[Cable]) -> list[str]:
    """The text form plays hand on to the planner (`sparkctl_discover_cables`): `node:port node:port`."""
    return [f"{c.a} {c.b}" for c in cables]
