"""ansible-runner's event dicts, read into small typed records the progress display can trust.

ansible-runner hands every callback event over as an untyped dict; reading the few fields sparkctl
needs in one place keeps the rest of the code typed and makes the mapping unit-testable against
events captured from a real run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["ok", "changed", "failed", "unreachable", "skipped"]

_OUTCOMES: dict[str, Outcome] = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}
_DEBUG_ACTIONS = ("debug", "ansible.builtin.debug")
_STDERR_TAIL = 600


@dataclass(frozen=True)
class TaskStart:
    """A task begins (on every host of the play at once)."""

    play: str
    task: str
    role: str


@dataclass(frozen=True)
class HostResult:
    """One host's result of one task. `message` holds what a failure (or a debug task) said."""

    host: str
    task: str
    role: str
    outcome: Outcome
    message: str = ""
    note: bool = False
    """True for a debug task's message: something the play wanted the user to read."""


@dataclass(frozen=True)
class HostProgress:
    """A retried task's interim word on one host (a module's `progress` on each try, e.g. image pulls)."""

    host: str
    task: str
    text: str


@dataclass
class HostStats:
    """Ansible's end-of-run counters for one host (the PLAY RECAP line)."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0

    @property
    def succeeded(self) -> bool:
        return self.failed == 0 and self.unreachable == 0


@dataclass
class Recap:
    """Every host's counters, from the `playbook_on_stats` event."""

    hosts: dict[str, HostStats] = field(default_factory=dict)


Event = TaskStart | HostResult | HostProgress | Recap


def parse_event(raw: Mapping[str, Any]) -> Event | None:
    """The typed form of one ansible-runner event, or None for events the display does not use."""
    kind = str(raw.get("event", ""))
    data: Mapping[str, Any] = raw.get("event_data") or {}
    if kind == "playbook_on_task_start":
        return TaskStart(str(data.get("play", "")), _task_name(data), str(data.get("role", "")))
    if kind == "playbook_on_stats":
        return _recap(data)
    if kind == "runner_retry":
        text = (data.get("res") or {}).get("progress")
        return HostProgress(str(data.get("host", "")), _task_name(data), str(text)) if text else None
    outcome = _OUTCOMES.get(kind)
    if outcome is None:
        return None
    result: Mapping[str, Any] = data.get("res") or {}
    if outcome == "ok" and result.get("changed"):
        outcome = "changed"
    note = outcome == "ok" and str(data.get("task_action", "")) in _DEBUG_ACTIONS and "msg" in result
    message = _message(result) if outcome in ("failed", "unreachable") or note else ""
    return HostResult(str(data.get("host", "")), _task_name(data), str(data.get("role", "")), outcome, message, note)


def _task_name(data: Mapping[str, Any]) -> str:
    return str(data.get("task") or data.get("task_action") or "")


def _message(result: Mapping[str, Any]) -> str:
    """What a failed (or debug) task said, in one line: msg, plus the end of stderr for commands."""
    msg = result.get("msg", "")
    if not isinstance(msg, str):
        msg = "; ".join(str(m) for m in msg) if isinstance(msg, list) else str(msg)
    stderr = str(result.get("stderr") or "").strip()
    text = " ".join(part for part in (msg.strip(), stderr[-_STDERR_TAIL:]) if part)
    return " ".join(text.split())


def _recap(data: Mapping[str, Any]) -> Recap:
    recap = Recap()
    columns = {
        "ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable",
        "skipped": "skipped", "rescued": "rescued",
    }
    for key, attribute in columns.items():
        for host, count in (data.get(key) or {}).items():
            stats = recap.hosts.setdefault(str(host), HostStats())
            setattr(stats, attribute, int(count))
    for host in data.get("processed") or {}:
        recap.hosts.setdefault(str(host), HostStats())
    return recap
