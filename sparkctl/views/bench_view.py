"""The human view of `sparkctl bench serve`: a progress bar on stderr while it runs, then one table row
per workload and concurrency."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from sparkctl.serving.sweep import Progress as ProgressCallback
from sparkctl.views.console import report_console


@contextmanager
def progress_bar() -> Iterator[ProgressCallback]:
    """A callback moving one bar per run (a new bar when the run changes)."""
    bars: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=False) as progress:
        def update(label: str, done: int, total: int) -> None:
            key = label.removeprefix("warming up: ")
            if key not in bars:
                bars[key] = progress.add_task(escape(label), total=total)
            progress.update(bars[key], completed=done, description=escape(label))

        yield update


def _triple(level: dict[str, Any], metric: str) -> str:
    return " / ".join(f"{level[f'p{p}_{metric}_ms']:.1f}" for p in (50, 90, 99))


def show_sweep(name: str, url: str, levels: Sequence[dict[str, Any]], prompts: str) -> None:
    table = Table("workload", "in/out", "measured in/out", "concurrency", "ok / failed", "output tok/s", "req/s",
                  "TTFT p50/p90/p99 ms", "TPOT p50/p90/p99 ms", "ITL p50/p90/p99 ms",
                  title=f"{escape(name)} at {escape(url)}", title_justify="left")
    for level in levels:
        failed = f"[red]{level['failed']}[/]" if level["failed"] else "0"
        done = max(level["completed"], 1)
        measured = f"{level['total_input_tokens'] / done:.0f}/{level['total_output_tokens'] / done:.0f}"
        table.add_row(level["workload"], f"{level['input_len']}/{level['output_len']}", measured,
                      str(level["max_concurrency"]),
                      f"{level['completed']} / {failed}", f"{level['output_throughput']:.1f}",
                      f"{level['request_throughput']:.2f}", _triple(level, "ttft"), _triple(level, "tpot"),
                      _triple(level, "itl"))
    out = report_console()
    out.print(table)
    out.print(f"prompts: {escape(prompts)}")
    errors = sorted({e for level in levels for e in level["errors"] if e})
    for error in errors[:5]:
        out.print(f"  [red]✗[/] {escape(error)}")


def show_compare(name: str, url: str, layouts: Sequence[str], cells: Sequence[dict[str, Any]]) -> None:
    """One row per workload and concurrency: each layout's tok/s, TTFT and TPOT, and the winner."""
    columns = ["workload", "in/out", "concurrency"]
    for metric in ("tok/s", "TTFT p50 ms", "TPOT p50 ms"):
        columns += [f"{layout} {metric}" for layout in layouts]
    table = Table(*columns, "winner", title=f"{escape(name)} at {escape(url)}: {' vs '.join(layouts)}",
                  title_justify="left")
    for cell in cells:
        results = cell["results"]
        row = [cell["workload"], f"{cell['input_len']}/{cell['output_len']}", str(cell["max_concurrency"])]
        for field, form in (("output_throughput", "{:.1f}"), ("median_ttft_ms", "{:.1f}"),
                            ("median_tpot_ms", "{:.2f}")):
            row += [form.format(results[layout][field]) + (f" [red]({results[layout]['failed']} failed)[/]"
                                                           if field == "output_throughput" and
                                                           results[layout]["failed"] else "")
                    for layout in layouts]
        lead = f" {cell['lead']:.2f}x" if cell["winner"] != "tie" and cell["lead"] else ""
        row.append(f"[bold]{cell['winner']}[/]{lead}")
        table.add_row(*row)
    report_console().print(table)
