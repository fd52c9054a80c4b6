"""`sparkctl deploy` and `sparkctl status`: the inventory's services run, and what runs now.

deploy checks every service declaration before any node is touched (exit 2), then runs
playbooks/services.yml (the same as plain ansible-playbook) and ends with the status of what it
deployed. status asks every node, over SSH, for its units and their health.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from sparkctl.commands.options import (
    become_option,
    become_used,
    inventory_option,
    inventory_used,
    node_targets,
    vault_used,
)
from sparkctl.errors import InputError, SparkctlError
from sparkctl.inventory import Inventory, load_inventory
from sparkctl.services.spec import KEY, ServicesSpec, read_services


def _spec(inventory: Path, only: tuple[str, ...]) -> tuple[Inventory, ServicesSpec]:
    hosts = load_inventory(inventory, vault_used())
    spec = read_services(hosts)
    names = [s.name for s in spec.services]
    for name in only:
        if name not in names:
            raise InputError(f"{name} is not a declared service", key="--service",
                             fix=f"name one of {', '.join(names) or f'the services (none declared in {KEY})'}")
    return hosts, spec


def run_services(inventory: Path, hosts: Inventory, only: tuple[str, ...], *, limit: str | None = None,
                 check: bool = False, override: Path | None = None, title: str = "sparkctl deploy") -> None:
    """Run playbooks/services.yml as deploy runs it: for `only` these services (all if empty), with the
    extra variables of `override` (a JSON file) taking precedence over the inventory for this run."""
    from rich.console import Console

    from sparkctl.provisioning import runner
    from sparkctl.provisioning.session import run_and_report

    extravars = runner.ProvisionVars()
    if only:
        extravars["sparkctl_services_only"] = list(only)
    playbook_run = runner.PlaybookRun(inventory=inventory, extravars=extravars, limit=limit, check=check,
                                      playbook=runner.SERVICES_PLAYBOOK, vault=vault_used(), become=become_used(),
                                      extravars_file=override)
    run_and_report(playbook_run, list(hosts.hosts), {h.name: h.values for h in hosts}, title,
                   Console(stderr=True, highlight=False))


def _report(hosts: Inventory, spec: ServicesSpec, only: tuple[str, ...], as_json: bool) -> bool:
    from rich.markup import escape
    from rich.table import Table

    from sparkctl.services.status import collect
    from sparkctl.views.console import report_console

    statuses = collect(spec, node_targets(hosts), only)
    ok = all(s.healthy for s in statuses)
    if as_json:
        click.echo(json.dumps({"inventory": inventory_used().to_dict(), "ok": ok,
                               "services": [s.to_dict() for s in statuses]}, indent=2))
        return ok
    table = Table("service", "node", "kind", "url", "state", "health", "uptime", "restarts", "detail",
                  title="services", title_justify="left")
    for s in statuses:
        table.add_row(escape(s.name), s.node, s.kind, escape(s.url or "-"), s.state,
                      "[green]healthy[/]" if s.healthy else "[red]NOT healthy[/]",
                      f"{s.uptime_s:.0f} s" if s.uptime_s else "-", str(s.restarts), escape(s.detail))
    report_console().print(table if statuses else "no services declared (sparkctl_services)")
    return ok


@click.command()
@inventory_option
@become_option
@click.option("--service", "only", multiple=True, metavar="NAME", help="Only this service (repeatable).")
@click.option("--limit", "-l", default=None, metavar="HOSTS", help="Only these Sparks (Ansible host pattern).")
@click.option("--check", is_flag=True, help="Dry run: show what would change (ansible-playbook --check --diff).")
def deploy(inventory: Path, only: tuple[str, ...], limit: str | None, check: bool) -> None:
    """Run the services of sparkctl_services as systemd units and wait until each answers."""
    hosts, spec = _spec(inventory, only)
    run_services(inventory, hosts, only, limit=limit, check=check)
    if check:
        from rich.console import Console

        Console(stderr=True, highlight=False).print("[green]check mode: nothing changed[/]")
        return
    if not _report(hosts, spec, only, as_json=False):
        raise SparkctlError("a service is not healthy (see above)")


@click.command()
@inventory_option
@become_option
@click.option("--service", "only", multiple=True, metavar="NAME", help="Only this service (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: ok, services.")
def status(inventory: Path, only: tuple[str, ...], as_json: bool) -> None:
    """Every service on every Spark: unit state, health, URL, model, uptime, restarts.

    Exit 0 when every service is healthy, 1 when one is not, 2 on bad input or an unreachable node.
    """
    hosts, spec = _spec(inventory, only)
    if not _report(hosts, spec, only, as_json):
        raise SparkctlError("a service is not healthy")
