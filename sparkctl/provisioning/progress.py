"""Live per-node progress of a provisioning run, and the per-node summary at its end.

One row per Spark: the task it is on (with what a retried task last reported, such as how far its
image pulls are) and its ok / changed / failed counts so far, so a slow or failing node stands out
while the run is going. Counts come from the task events; the final
summary uses Ansible's own recap, which is what decides the exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sparkctl.provisioning.events import Event, HostProgress, HostResult, HostStats, Recap, TaskStart
from sparkctl.provisioning.runner import RunOutcome

_STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red", "skipped": "dim"}


@dataclass
class _Row:
    task: str = "waiting"
    last: str = ""
    ok: int = 0
    changed: int = 0
    failed: int = 0


@dataclass
class Progress:
    """A rich Live table fed with events; use as a context manager around the run."""

    hosts: list[str]
    console: Console
    title: str = "sparkctl provision"
    _rows: dict[str, _Row] = field(default_factory=dict)
    _task: str = ""
    _live: Live | None = None

    def __post_init__(self) -> None:
        self._rows = {host: _Row() for host in self.hosts}

    def __enter__(self) -> Self:
        self._live = Live(self._render(), console=self.console, refresh_per_second=8, transient=True)
        self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(kind, value, tb)
            self._live = None

    def update(self, event: Event) -> None:
        """Take one event into the table (called from ansible-runner's event thread)."""
        if isinstance(event, TaskStart):
            self._task = f"{event.role} : {event.task}" if event.role else event.task
            for row in self._rows.values():
                if row.failed == 0:
                    row.task = self._task
        elif isinstance(event, HostResult):
            row = self._rows.setdefault(event.host, _Row())
            row.last = event.outcome
            if event.outcome == "changed":
                row.changed += 1
            elif event.outcome == "ok":
                row.ok += 1
            elif event.outcome in ("failed", "unreachable"):
                row.failed += 1
                row.task = f"{event.outcome}: {event.task}"
            if not self.console.is_terminal and event.outcome in ("changed", "failed", "unreachable"):
                self.console.print(f"{event.host}: {event.outcome}: {event.task}", highlight=False)
        elif isinstance(event, HostProgress):
            row = self._rows.setdefault(event.host, _Row())
            if row.task != f"{event.task}: {event.text}" and not self.console.is_terminal:
                self.console.print(f"{event.host}: {event.text}", highlight=False)
            row.task = f"{event.task}: {event.text}"
        elif isinstance(event, Recap):
            return
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Table:
        table = Table(title=self.title, title_justify="left", expand=False)
        for column in ("node", "ok", "changed", "failed", "task"):
            table.add_column(column, no_wrap=column != "task")
        for host, row in self._rows.items():
            table.add_row(
                host, str(row.ok), Text(str(row.changed), style="yellow" if row.changed else ""),
                Text(str(row.failed), style="red" if row.failed else ""),
                Text(row.task, style=_STYLE.get(row.last, "")),
            )
        return table


def summary(outcome: RunOutcome, hosts: list[str]) -> Group:
    """The end-of-run report: Ansible's recap per node, then what failed and what the play noted."""
    table = Table(title="result per node", title_justify="left")
    for column in ("node", "result", "ok", "changed", "failed", "unreachable", "skipped", "rescued"):
        table.add_column(column)
    for host in hosts:
        stats = outcome.recap.hosts.get(host)
        if stats is None:
            table.add_row(host, Text("not run", style="dim"), *[""] * 6)
            continue
        table.add_row(host, _verdict(stats), *(str(n) for n in (
            stats.ok, stats.changed, stats.failed, stats.unreachable, stats.skipped, stats.rescued)))
    parts: list[Table | Text] = [table]
    for host in hosts:
        for note in outcome.notes.get(host, []):
            parts.append(Text(f"note {host}: {note}", style="cyan"))
    for host, message in outcome.failures.items():
        stats = outcome.recap.hosts.get(host)
        if stats is None or not stats.succeeded:
            parts.append(Text(f"{host}: {message}", style="red"))
    return Group(*parts)


def _verdict(stats: HostStats) -> Text:
    if stats.unreachable:
        return Text("unreachable", style="bold red")
    if stats.failed:
        return Text("failed", style="bold red")
    if stats.changed:
        return Text("changed", style="yellow")
    return Text("unchanged", style="green")
