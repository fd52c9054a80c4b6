"""Thin, typed wrappers over the host tools the lab drives (ip, tc, iptables) and over /proc and cgroups.

Every command is an argv list (no shell). A failing command becomes an EnvironmentProblem quoting
the command and its error, because at that point the machine, not the user's input, is at fault.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sparkctl.errors import EnvironmentProblem

NETNS_DIR = Path("/run/netns")


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a host command; with check, a non-zero exit raises EnvironmentProblem with its stderr."""
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise EnvironmentProblem(f"`{argv[0]}` is not installed (needed by `sparkctl lab`)") from None
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"`{shlex.join(argv)}` did not finish within {timeout:g} s") from None
    if check and result.returncode != 0:
        detail = result.stderr.strip() or result.stdout.strip()
        raise EnvironmentProblem(f"`{shlex.join(argv)}` failed (exit {result.returncode}): {detail}")
    return result


def ip(*args: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`ip [-n NS] ARGS`."""
    prefix = ["ip", "-n", namespace] if namespace else ["ip"]
    return run([*prefix, *args], check=check)


def in_namespace(namespace: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a tool (iptables, ping...) inside a lab namespace."""
    return run(["ip", "netns", "exec", namespace, *argv], check=check)


def namespace_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


@dataclass(frozen=True)
class LinkInfo:
    """What the lab needs to know about a netdev: admin state, carrier, MTU, MAC and global addresses."""

    name: str
    up: bool
    carrier: bool
    mtu: int
    mac: str
    addresses: tuple[str, ...]


def links(namespace: str | None = None) -> dict[str, LinkInfo]:
    """Every netdev of a namespace (or of the root namespace), by name."""
    result = ip("-j", "address", "show", namespace=namespace)
    found: dict[str, LinkInfo] = {}
    for item in json.loads(result.stdout or "[]"):
        flags = item.get("flags", [])
        found[item["ifname"]] = LinkInfo(
            name=item["ifname"],
            up="UP" in flags,
            carrier="LOWER_UP" in flags,
            mtu=int(item.get("mtu", 0)),
            mac=str(item.get("address", "")),
            addresses=tuple(
                f"{a['local']}/{a['prefixlen']}"
                for a in item.get("addr_info", [])
                if a.get("scope") == "global"
            ),
        )
    return found


def link(namespace: str | None, name: str) -> LinkInfo | None:
    return links(namespace).get(name)


def wait_for(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate()` until it is true or `timeout` passes; links come up a moment after `set up`."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def same_process(pid: int | None, start: int | None) -> bool:
    """True while `pid` is still the very process that was recorded (not a recycled PID, not a zombie)."""
    return pid is not None and start is not None and process_start_time(pid) == start


def reap(pid: int) -> None:
    """Collect `pid` if it is our child, so a test process does not keep zombies of the nodes it started."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def signal_process(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def cgroup_hierarchies() -> list[Path]:
    """Mount points of the hierarchies systemd-nspawn uses: cgroup2 and the named v1 `systemd` one."""
    found: list[Path] = []
    for line in Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines():
        _, mount_point, fstype, options, *_ = line.split()
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options.split(",")):
            found.append(Path(mount_point))
    return found


def cgroup_pids(directory: Path) -> list[int]:
    """Every process in a cgroup and its descendants.

    The node's own systemd may be removing sub-cgroups while this walks them: os.walk skips what
    vanished instead of failing, as Path.rglob does.
    """
    pids: list[int] = []
    for root, _, files in os.walk(directory):
        if "cgroup.procs" not in files:
            continue
        try:
            pids += [int(line) for line in (Path(root) / "cgroup.procs").read_text(encoding="ascii").split()]
        except OSError:
            continue
    return pids


def remove_cgroup(directory: Path) -> None:
    """Remove an (empty) cgroup tree, deepest first; parts that vanished meanwhile are already done."""
    for root, _, _ in os.walk(directory, topdown=False):
        with contextlib.suppress(FileNotFoundError):
            Path(root).rmdir()
