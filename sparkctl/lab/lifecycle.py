"""Bring a lab up, take it down, and say how it is doing.

`up` records each namespace, host interface and cgroup in state.json before creating it, so an `up`
that fails (or a machine that crashes) halfway can always be undone by `down`, which removes what
is recorded, and only that. A failing `up` undoes itself.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from ipaddress import IPv4Interface, IPv4Network, ip_interface
from pathlib import Path
from typing import Any

from sparkctl import hardware
from sparkctl.errors import EnvironmentProblem, InputError, SparkctlError
from sparkctl.lab import inventory, network, nodes, preflight, system
from sparkctl.lab.paths import LabPaths, bridge_name, check_name, mgmt_host_interface, namespace
from sparkctl.lab.state import Flavor, LabState, NodeState, load, locked, save
from sparkctl.lab.topology import TOPOLOGIES, Port, check_size, conventional, hubs_of, node_names

MGMT_SUPERNET = IPv4Network("198.18.0.0/16")
"""Management /24s come from here (198.18.0.0/15 is for benchmarking; 198.19/16 is the fabric pool)."""
NODE_HOST_OFFSET = 10
"""spark1 is .11, spark2 .12 ..."""
SETTLE_TIMEOUT_S = 5.0
NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")

Say = Callable[[str], None]


def _used_networks(root: Path) -> list[IPv4Network]:
    """IPv4 networks in use in the root namespace, plus those of labs recorded under `root`."""
    used: list[IPv4Network] = []
    routes = json.loads(system.ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    for route in routes:
        dst = route.get("dst", "default")
        if dst != "default":
            used.append(IPv4Network(dst, strict=False))
    for info in system.links().values():
        for address in info.addresses:
            if isinstance(network_ := ip_interface(address).network, IPv4Network):
                used.append(network_)
    for state_file in root.glob("*/state.json"):
        try:
            used.append(IPv4Network(json.loads(state_file.read_text(encoding="utf-8"))["mgmt_subnet"]))
        except (OSError, ValueError, KeyError):
            continue
    return used


def free_subnet(root: Path) -> IPv4Network:
    """The first 198.18.X.0/24 (X >= 1) that nothing on this machine uses."""
    used = _used_networks(root)
    for candidate in list(MGMT_SUPERNET.subnets(new_prefix=24))[1:]:
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise EnvironmentProblem("no free /24 left in 198.18.0.0/16 for a lab's management network")


def _add_namespace(paths: LabPaths, state: LabState, name: str) -> None:
    if system.namespace_exists(name):
        raise EnvironmentProblem(
            f"network namespace {name} already exists and this lab did not create it — remove it "
            "(`ip netns del`) if it is left from an older lab, or pick another --name"
        )
    state.namespaces.append(name)
    save(paths, state)
    system.ip("netns", "add", name)


def _add_host_interface(paths: LabPaths, state: LabState, name: str) -> None:
    if system.link(None, name) is not None:
        raise EnvironmentProblem(
            f"interface {name} already exists in the root namespace — pick another --name for the lab"
        )
    state.host_interfaces.append(name)
    save(paths, state)


def _bonding_available(spare: str) -> bool:
    """Probe for the bonding driver inside the lab's own spare namespace."""
    probe = system.ip("link", "add", "bondprobe", "type", "bond", namespace=spare, check=False)
    if probe.returncode == 0:
        system.ip("link", "del", "bondprobe", namespace=spare)
    return probe.returncode == 0


def _build(paths: LabPaths, state: LabState, count: int, say: Say) -> None:
    names = node_names(count)
    say(f"namespaces for {', '.join(names)}")
    for member in [*names, network.SPARE, *state.hubs]:
        _add_namespace(paths, state, namespace(state.name, member))
    system.ip("link", "set", "lo", "up", namespace=namespace(state.name, network.SPARE))
    _build_management(paths, state, names, say)
    for hub in state.hubs:
        network.create_hub(state.name, hub)
    say(f"{state.topology} cabling")
    _build_fabric(paths, state, names)
    say("keys and node file systems")
    _write_node_files(paths, state)
    say("booting nodes (systemd in containers)")
    _boot(paths, state)
    for cable in state.cables:
        network.settle(state.name, cable, timeout=SETTLE_TIMEOUT_S)
    inventory.write(paths, state)
    save(paths, state)


def _build_management(paths: LabPaths, state: LabState, names: list[str], say: Say) -> None:
    subnet = IPv4Network(state.mgmt_subnet)
    gateway = subnet[1]
    say(f"management network {subnet} (this host is {gateway})")
    bridge = bridge_name(state.name)
    _add_host_interface(paths, state, bridge)
    network.create_mgmt_bridge(bridge, IPv4Interface(f"{gateway}/{subnet.prefixlen}"))
    for index, name in enumerate(names, start=1):
        node = NodeState(
            name=name,
            namespace=namespace(state.name, name),
            mgmt_address=str(subnet[NODE_HOST_OFFSET + index]),
            host_interface=mgmt_host_interface(state.name, index),
        )
        state.nodes[name] = node
        _add_host_interface(paths, state, node.host_interface)
        address = IPv4Interface(f"{node.mgmt_address}/{subnet.prefixlen}")
        network.create_mgmt_link(
            node.host_interface, bridge, node.namespace,
            None if state.flavor == "dgx-os" else address, gateway,
        )


def _build_fabric(paths: LabPaths, state: LabState, names: list[str]) -> None:
    """Plug the topology's conventional cables; every other port gets its netdevs without carrier."""
    state.cables = conventional(state.topology, names)
    save(paths, state)
    fresh = [network.PortConfig() for _ in hardware.HALVES]
    for cable in state.cables:
        network.plug(state.name, cable, {port: fresh for port in cable.ports()})
    cabled = {port for cable in state.cables for port in cable.ports()}
    for name in names:
        for port in (Port(name, p) for p in hardware.PORTS):
            if port not in cabled:
                network.park(state.name, port, fresh)
    if state.topology == "bond" and not _bonding_available(namespace(state.name, network.SPARE)):
        state.warnings.append(
            "this kernel has no bonding driver: provisioning can render and `netplan generate` a bond, "
            "but bond0 cannot come up in this lab"
        )


def _write_node_files(paths: LabPaths, state: LabState) -> None:
    """The lab's client key, each node's file system layer, and a known_hosts with every host key."""
    client_key = nodes.generate_key(paths.client_key, f"sparkctl-lab-{state.name}")
    subnet = IPv4Network(state.mgmt_subnet)
    for node in state.nodes.values():
        node.host_key = nodes.write_node_files(
            paths, node, client_key, state.flavor,
            IPv4Interface(f"{node.mgmt_address}/{subnet.prefixlen}"), subnet[1],
        )
    known_hosts = "".join(nodes.known_hosts_line(node) + "\n" for node in state.nodes.values())
    paths.known_hosts.write_text(known_hosts, encoding="ascii")
    for node in state.nodes.values():
        (paths.node_etc(node.name) / "ssh" / "ssh_known_hosts").write_text(known_hosts, encoding="ascii")
    save(paths, state)


def _boot(paths: LabPaths, state: LabState) -> None:
    """Start every node (cgroups recorded first), then wait for all of them in parallel."""
    for node in state.nodes.values():
        node.cgroups = [str(d) for d in nodes.cgroup_dirs(node)]
        save(paths, state)
        nodes.start(paths, node)
        save(paths, state)
    with ThreadPoolExecutor(max_workers=len(state.nodes)) as pool:
        booted = pool.map(partial(nodes.wait_ready, paths), state.nodes.values())
        verdicts = dict(zip(state.nodes, booted, strict=True))
    for name, verdict in verdicts.items():
        if verdict != "running":
            failed = nodes.failed_units(paths, state.nodes[name])
            state.warnings.append(
                f"{name}: systemd is {verdict} (failed units: {', '.join(failed) or 'none'})"
            )


def up(
    root: Path, name: str, count: int, topology: str, speed_mbps: int, say: Say, flavor: Flavor = "networkd",
) -> tuple[Path, LabState]:
    """Create a lab; returns its inventory directory and state."""
    check_name(name)
    if topology not in TOPOLOGIES:
        raise InputError(
            f"unknown topology {topology!r}", key="--topology", fix=f"use one of {', '.join(TOPOLOGIES)}"
        )
    check_size(topology, count)
    if speed_mbps <= 0:
        raise InputError(
            "must be a positive number of Mb/s", key="--speed-mbps", fix="e.g. --speed-mbps 10000"
        )
    preflight.check(flavor)
    paths = LabPaths(root, name)
    with locked():
        if paths.dir.exists():
            raise InputError(
                f"a lab named {name} already exists ({paths.dir})", key="--name",
                fix=f"take it down first (sparkctl lab down --name {name}) or pick another name",
            )
        state = LabState(
            name=name, topology=topology, speed_mbps=speed_mbps, flavor=flavor,
            mgmt_subnet=str(free_subnet(root)), hubs=list(hubs_of(topology)),
        )
        paths.dir.mkdir(parents=True, mode=0o700)
        save(paths, state)
        try:
            _build(paths, state, count, say)
        except BaseException:
            say("lab up failed: removing what it created")
            _teardown(paths, state)
            raise
    return paths.inventory, state


def _teardown(paths: LabPaths, state: LabState) -> None:
    """Remove what state records — processes, cgroups, namespaces, host interfaces — then the state dir.

    Keeps going past failures so one stuck piece does not leave the rest; what could not be removed
    stays recorded, so `down` can be run again.
    """
    problems: list[str] = []
    running = list(state.nodes.values())
    with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
        outcomes = list(pool.map(_stop, running))
    for node, problem in zip(running, outcomes, strict=True):
        if problem:
            problems.append(problem)
            continue
        node.pid = node.pid_start = None
        node.cgroups = []
        _rmdir_if_empty(NSPAWN_PROPAGATE / node.namespace)
        save(paths, state)
    for name in list(state.host_interfaces):
        if system.link(None, name) is not None:
            system.ip("link", "del", name, check=False)
        if system.link(None, name) is not None:
            problems.append(f"interface {name} could not be deleted")
            continue
        state.host_interfaces.remove(name)
        save(paths, state)
    for name in list(state.namespaces):
        if system.namespace_exists(name):
            result = system.ip("netns", "del", name, check=False)
            if result.returncode != 0:
                problems.append(f"namespace {name}: {result.stderr.strip()}")
                continue
        state.namespaces.remove(name)
        save(paths, state)
    if problems:
        raise EnvironmentProblem(
            f"lab {state.name} is only partly down ({'; '.join(problems)}); its state stays in {paths.dir} — "
            f"fix that and run `sparkctl lab down --name {state.name}` again"
        )
    shutil.rmtree(paths.dir)


def _stop(node: NodeState) -> str | None:
    """Stop one node; nodes power off in parallel (each takes about a second)."""
    try:
        nodes.stop(node)
    except SparkctlError as exc:
        return str(exc)
    return None


def _rmdir_if_empty(directory: Path) -> None:
    """nspawn leaves its (empty) propagation directory behind when it is killed rather than stopped."""
    try:
        directory.rmdir()
    except OSError:
        pass


def down(root: Path, name: str) -> LabState | None:
    """Take a lab down; returns what was removed, or None when there was no such lab."""
    check_name(name)
    paths = LabPaths(root, name)
    with locked():
        state = load(paths)
        if state is None:
            return None
        _teardown(paths, state)
    return state


def open_lab(root: Path, name: str) -> tuple[LabPaths, LabState]:
    """The paths and state of an existing lab, or InputError saying how to make one."""
    check_name(name)
    paths = LabPaths(root, name)
    state = load(paths)
    if state is None:
        others = lab_names(root)
        known = f" (labs there: {', '.join(others)})" if others else ""
        raise InputError(
            f"no lab named {name} under {root}{known}", key="--name",
            fix=f"pass --name of an existing lab, or create it with `sparkctl lab up --name {name}`",
        )
    return paths, state


def status(paths: LabPaths, state: LabState) -> dict[str, Any]:
    """The lab as recorded, plus what is true now: containers running, sshd answering, carrier."""
    node_rows = [
        {
            "name": node.name,
            "namespace": node.namespace,
            "mgmt_address": node.mgmt_address,
            "pid": node.pid,
            "running": system.same_process(node.pid, node.pid_start),
            "sshd": nodes.sshd_listening(node.mgmt_address, timeout=0.5),
        }
        for node in state.nodes.values()
    ]
    cable_rows = []
    for cable in state.cables:
        carrier = []
        for half in hardware.HALVES:
            end = network.spark_end(state.name, cable.a, half)
            info = system.link(end.namespace, end.device) if system.namespace_exists(end.namespace) else None
            carrier.append(bool(info and info.carrier))
        cable_rows.append({**cable.to_dict(), "carrier": carrier})
    return {
        "name": state.name,
        "topology": state.topology,
        "flavor": state.flavor,
        "state_dir": str(paths.dir),
        "inventory": str(paths.inventory),
        "mgmt_subnet": state.mgmt_subnet,
        "nodes": node_rows,
        "hubs": state.hubs,
        "cables": cable_rows,
        "faults": [
            {"target": f.target, "kind": f.kind, "value": f.value,
             "applied": [f"{a.namespace}/{a.device}" for a in f.applied]}
            for f in state.faults
        ],
        "namespaces": state.namespaces,
        "host_interfaces": state.host_interfaces,
        "warnings": state.warnings,
    }


def lab_names(root: Path) -> list[str]:
    """Labs recorded under `root`."""
    return sorted(p.parent.name for p in root.glob("*/state.json"))

