"""A lab's record of everything it created, written to disk before each thing is created.

`down` removes exactly what is recorded here and nothing else, so it works after a crash (the record
is already on disk) and never touches a namespace, interface or process someone else made with a
similar name. The file is rewritten atomically after every change.

No mounts are recorded because the lab makes none on the host beyond the /run/netns/<namespace>
binds that `ip netns` owns (gone with the namespace): a node's overlay and bind mounts live in its
container's private mount namespace and vanish with its processes, which the node's cgroups record.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from sparkctl.errors import EnvironmentProblem
from sparkctl.lab.paths import LOCK_FILE, LabPaths
from sparkctl.lab.topology import Cable, Port

STATE_VERSION = 1

Flavor = Literal["networkd", "dgx-os"]
"""What runs a lab node's network: systemd-networkd (a server install) or NetworkManager (DGX OS)."""
FLAVORS: tuple[Flavor, ...] = get_args(Flavor)


@dataclass
class NodeState:
    """One Spark: its namespace, management address and the container that runs its systemd."""

    name: str
    namespace: str
    mgmt_address: str
    host_interface: str
    host_key: str = ""
    pid: int | None = None
    pid_start: int | None = None
    """Start time of `pid` (clock ticks since boot): a recycled PID never matches it."""
    cgroups: list[str] = field(default_factory=list)
    """cgroup directories made for this node; every process in them belongs to the node."""


@dataclass
class Applied:
    """One place a fault was applied, with what is needed to undo exactly that."""

    namespace: str
    device: str
    rule: list[str] = field(default_factory=list)
    """For loss: the iptables rule (after `-t raw -A PREROUTING`)."""
    previous_mtu: int | None = None


@dataclass
class Fault:
    """A fault on one Spark netdev, e.g. kind=rate value=2gbit on spark1:enp1s0f0np0."""

    node: str
    device: str
    kind: str
    value: str
    applied: list[Applied] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"{self.node}:{self.device}"


@dataclass
class LabState:
    """Everything one lab made: namespaces, host interfaces, nodes (with PIDs), cables and faults."""

    name: str
    topology: str
    speed_mbps: int
    mgmt_subnet: str
    flavor: Flavor = "networkd"
    namespaces: list[str] = field(default_factory=list)
    host_interfaces: list[str] = field(default_factory=list)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    hubs: list[str] = field(default_factory=list)
    cables: list[Cable] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    version: int = STATE_VERSION

    def cable_of(self, port: Port) -> Cable | None:
        """The cable plugged into a Spark port, if any."""
        return next((cable for cable in self.cables if port in cable.ports()), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cables"] = [cable.to_dict() for cable in self.cables]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabState:
        faults = [
            Fault(**{**f, "applied": [Applied(**a) for a in f["applied"]]}) for f in data.get("faults", [])
        ]
        return cls(
            name=data["name"],
            topology=data["topology"],
            speed_mbps=data["speed_mbps"],
            mgmt_subnet=data["mgmt_subnet"],
            flavor=_flavor(data.get("flavor", "networkd")),
            namespaces=list(data.get("namespaces", [])),
            host_interfaces=list(data.get("host_interfaces", [])),
            nodes={name: NodeState(**node) for name, node in data.get("nodes", {}).items()},
            hubs=list(data.get("hubs", [])),
            cables=[Cable.from_dict(c) for c in data.get("cables", [])],
            faults=faults,
            warnings=list(data.get("warnings", [])),
            version=data.get("version", STATE_VERSION),
        )


def _flavor(value: Any) -> Flavor:
    for flavor in FLAVORS:
        if value == flavor:
            return flavor
    raise ValueError(f"unknown flavor {value!r}")


def save(paths: LabPaths, state: LabState) -> None:
    """Write state.json atomically (a crash leaves the old or the new file, never half of one)."""
    paths.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = paths.state_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, paths.state_file)


def load(paths: LabPaths) -> LabState | None:
    """The recorded state of a lab, or None when no lab of that name exists."""
    try:
        text = paths.state_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return LabState.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvironmentProblem(
            f"{paths.state_file} is damaged ({exc}); remove the lab's namespaces "
            f"(`ip netns list | grep sparklab-{paths.name}-`) and that directory by hand"
        ) from None


@contextmanager
def locked() -> Iterator[None]:
    """Serialise lab changes on this machine: labs share address ranges and interface names."""
    directory = LOCK_FILE.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise EnvironmentProblem(f"{directory} must be a directory of this user with mode 0700; "
                                 "remove it and run again")
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
