"""The human view of a verify-link report: one table per link, then the problems with their fixes."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sparkctl.verify.engine import Report

VERDICT = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]skipped[/]"}


def show_report(report: Report, console: Console) -> None:
    links: dict[str, Table] = {}
    for check in report.checks:
        table = links.get(check.link)
        if table is None:
            table = links[check.link] = Table(title=check.link, title_justify="left", expand=False)
            for column in ("check", "value", "expected", "verdict"):
                table.add_column(column)
        table.add_row(check.check, check.value, check.expected, VERDICT[check.ok])
    for table in links.values():
        console.print(table)
    if report.ok:
        console.print("[bold green]all links pass[/]")
        return
    console.print(f"[bold red]{len(report.problems)} problem(s):[/]")
    for problem in report.problems:
        console.print(f"  [red]✗[/] {problem.link} [bold]{problem.check}[/]: {problem.message}")
