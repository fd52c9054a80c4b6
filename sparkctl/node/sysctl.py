"""The planned kernel settings made live on a node, and the ones it cannot set, each with why.

The sysctl file makes the settings hold at every boot; this sets them now. A key can be impossible to set
where the node does not own its kernel: in a network namespace (the lab's nodes, a container) some
keys do not exist (the kernel keeps them machine-wide) and others are read-only mirrors of the host's.
Those are reported apart, so a real Spark fails on them and a lab node goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

State = Literal["rw", "ro", "absent"]
PROC_SYS = Path("/proc/sys")


@dataclass(frozen=True)
class Live:
    state: State
    value: str


@dataclass(frozen=True)
class Differs:
    key: str
    want: str
    have: str
    state: State

    def why_stuck(self) -> str:
        if self.state == "absent":
            return f"{self.key} (planned {self.want}) does not exist in this network namespace: the kernel keeps it machine-wide"
        return (f"{self.key} (planned {self.want}) is read-only here at {self.have}: a machine-wide value mirrored into "
                "this namespace, or /proc/sys mounted read-only in this container")


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def read(keys: list[str], proc_sys: Path = PROC_SYS) -> dict[str, Live]:
    out: dict[str, Live] = {}
    for key in keys:
        path = proc_sys / key.replace(".", "/")
        try:
            value = _squeezed(path.read_text(encoding="ascii", errors="replace"))
        except FileNotFoundError:
            out[key] = Live("absent", "")
            continue
        out[key] = Live("rw" if os.access(path, os.W_OK) else "ro", value)
    return out


def differences(wanted: Mapping[str, str], live: Mapping[str, Live]) -> list[Differs]:
    """Planned keys whose live value differs (whitespace-insensitively, as the kernel prints them)."""
    return [Differs(key, want, live[key].value, live[key].state)
            for key, want in wanted.items() if live[key].value != _squeezed(want)]


def apply(wanted: Mapping[str, str], run: Callable[[list[str]], tuple[int, str, str]], check_mode: bool,
          proc_sys: Path = PROC_SYS) -> tuple[list[Differs], list[Differs], str]:
    """(keys set, keys this node cannot set, what failed: '' when every settable key took its value)."""
    differs = differences(wanted, read(list(wanted), proc_sys))
    settable = [d for d in differs if d.state == "rw"]
    stuck = [d for d in differs if d.state != "rw"]
    if not settable or check_mode:
        return settable, stuck, ""
    _, _, err = run(["sysctl", "-w", *(f"{d.key}={d.want}" for d in settable)])
    after = differences({d.key: d.want for d in settable}, read([d.key for d in settable], proc_sys))
    failed = "; ".join(f"{d.key} (now {d.have}, planned {d.want})" for d in after)
    return settable, stuck, f"sysctl did not set {failed}; sysctl said: {err.strip()}" if after else ""
