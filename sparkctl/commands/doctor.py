"""`sparkctl doctor`: drift since provisioning, found on every node at once, each finding with its fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sparkctl.commands.options import (
    become_option,
    become_used,
    inventory_option,
    inventory_used,
    node_targets,
    vault_used,
)
from sparkctl.errors import SparkctlError

if TYPE_CHECKING:  # imported lazily at run time: `sparkctl --help` stays fast
    from rich.console import Console

    from sparkctl.doctor import NotChecked, WatchEvent
    from sparkctl.services.status import ServiceStatus


@click.command()
@inventory_option
@become_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: ok, findings, not_checked, watch.")
@click.option("--fix", is_flag=True, help="When a finding is provisioning's, re-apply what provisioning owns (on every Spark: "
              "discovery needs them all; those without findings change nothing), then look again.")
def doctor(inventory: Path, as_json: bool, fix: bool) -> None:
    """Checks of every Spark against its plan: fabric, speed, PCIe, error counters, files, forwarding, parity,
    GID index, services. Nothing on a node changes but doctor's own record of the error counters.

    Exit 0 when nothing drifted, 1 on findings, 2 on bad input or an unreachable node.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from sparkctl import doctor as checks
    from sparkctl.inventory import load_inventory
    from sparkctl.parallel import parallel
    from sparkctl.services.spec import read_services
    from sparkctl.services.status import collect
    from sparkctl.settings import read_settings
    from sparkctl.verify.expectations import read_expectations
    from sparkctl.views.console import report_console

    vault = vault_used()
    hosts = load_inventory(inventory, vault)
    settings = read_settings(hosts)
    speed = read_expectations(hosts).link_speed_mbps
    spec = read_services(hosts)
    targets = node_targets(hosts)

    history: dict[str, list[checks.WatchEvent]] = {}
    unread: list[checks.NotChecked] = []

    def look() -> list[checks.Finding]:
        images = {node: sorted({s.image for s in spec.on(node)}) for node in targets}
        # the services' health is asked at the same time as the facts: one wait for both round trips
        answers: list[Any] = parallel(_call, [
            lambda: checks.gather(targets, checks.READ_FILES, images, spec.container_cli),
            lambda: collect(spec, targets) if spec.services else []])
        facts: dict[str, dict[str, Any]] = answers[0]
        statuses: list[ServiceStatus] = answers[1]
        history.update(checks.watch_history(facts))
        plan = checks.plan_as_provisioned(settings, facts)
        unread[:] = checks.not_checked(plan, facts)
        findings = checks.examine(settings, plan, facts, speed)
        for status in statuses:
            if not status.healthy:
                findings.append(checks.Finding(status.node, f"service {status.name}", status.detail, "healthy",
                                               f"sparkctl deploy --service {status.name}"))
        return findings

    findings = look()
    err = Console(stderr=True, highlight=False)
    if fix and findings:
        from sparkctl.provisioning import runner
        from sparkctl.provisioning.session import run_and_report

        nodes = sorted({f.node for f in findings if f.provisioned}, key=list(targets).index)
        if nodes:  # every Spark: discovery needs them all, and the others change nothing
            err.print(f"re-applying what provisioning owns: findings on {', '.join(nodes)}")
            run = runner.PlaybookRun(inventory=inventory, vault=vault, become=become_used())
            run_and_report(run, list(targets), {h.name: h.values for h in hosts}, "sparkctl doctor --fix", err)
            findings = look()
    if as_json:
        click.echo(json.dumps({"inventory": inventory_used().to_dict(), "ok": not findings,
                               "findings": [f.to_dict() for f in findings],
                               "not_checked": [n.to_dict() for n in unread],
                               "watch": {node: [e.to_dict() for e in events] for node, events in history.items()}},
                              indent=2))
    else:
        _print_watch(history, report_console())
        _print_not_checked(unread, report_console())
        if findings:
            table = Table("node", "check", "found", "expected", "fix", title="findings", title_justify="left")
            for f in findings:
                table.add_row(f.node, escape(f.check), escape(f.found), escape(f.expected), escape(f.fix))
            report_console().print(table)
        else:
            report_console().print(f"[green]no drift on {', '.join(targets)}[/]")
    if findings:
        raise SparkctlError(f"{len(findings)} finding(s)")


def _call(ask: Callable[[], Any]) -> Any:
    return ask()


def _print_watch(history: dict[str, list[WatchEvent]], console: Console) -> None:
    """The on-node watch's latest changes per node, oldest first, when there are any."""
    import time

    from rich.markup import escape
    from rich.table import Table

    events = [e for node_events in history.values() for e in node_events]
    if not events:
        return
    table = Table("node", "when", "watch saw", "what", title="on-node watch (latest changes)", title_justify="left")
    for e in events:
        table.add_row(e.node, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at)), e.event, escape(e.text))
    console.print(table)


def _print_not_checked(unread: list[NotChecked], console: Console) -> None:
    """What the nodes could not show, one line per check and reason, naming where."""
    from rich.markup import escape

    where: dict[tuple[str, str], list[str]] = {}
    for item in unread:
        where.setdefault((item.check, item.why), []).append(f"{item.node} {item.device}".strip())
    for (check, why), subjects in where.items():
        console.print(f"[dim]not checked: {escape(check)} on {escape(', '.join(subjects))} ({escape(why)})[/]")
