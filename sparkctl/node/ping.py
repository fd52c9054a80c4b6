"""Ping every fabric target of a node at once, with frames of the full MTU that may not fragment.

Each target gets one `ping -M do` with a payload that fills its interface's MTU, repeated once a second
until it answers or the wait runs out (links that just came up need a moment). A target that does not
answer gets one small ping more, to tell an MTU mismatch on the way (small frames cross, large ones are
dropped) from a target that is not there at all.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Verdict = Literal["ok", "small", "none"]


def _start(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def full_frame(target: Mapping[str, Any], wait_s: float) -> list[str]:
    return ["ping", "-n", "-q", "-c", "1", "-w", str(max(1, round(wait_s))), "-M", "do",
            "-s", str(target["payload"]), "-I", str(target["interface"]), str(target["address"])]


def small_frame(target: Mapping[str, Any]) -> list[str]:
    return ["ping", "-n", "-q", "-c", "1", "-w", "2", "-I", str(target["interface"]), str(target["address"])]


def ping_all(targets: Sequence[Mapping[str, Any]], wait_s: float) -> list[Verdict]:
    """The verdict for each target, in order."""
    full = [_start(full_frame(t, wait_s)) for t in targets]
    verdicts: list[Verdict] = ["ok" if p.wait() == 0 else "none" for p in full]
    retry = {i: _start(small_frame(targets[i])) for i, v in enumerate(verdicts) if v != "ok"}
    for i, process in retry.items():
        if process.wait() == 0:
            verdicts[i] = "small"
    return verdicts


def unanswered(targets: Sequence[Mapping[str, Any]], verdicts: Sequence[Verdict]) -> list[str]:
    """One sentence per target that failed."""
    out = []
    for target, verdict in zip(targets, verdicts, strict=True):
        if verdict == "small":
            out.append(f"{target['who']} ({target['address']}) via {target['interface']} answers only small pings: "
                       f"frames of MTU {target['mtu']} are dropped on the way")
        elif verdict == "none":
            out.append(f"{target['who']} ({target['address']}) via {target['interface']} does not answer")
    return out
