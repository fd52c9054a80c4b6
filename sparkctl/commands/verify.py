"""`sparkctl verify-link`: cabling, MTU and bandwidth of every planned link, each failure with its fix."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sparkctl.commands.options import (
    become_option,
    inventory_option,
    inventory_used,
    node_targets,
    topology_option,
    vault_used,
)
from sparkctl.errors import InputError
from sparkctl.inventory import load_inventory
from sparkctl.settings import read_settings


@click.command("verify-link")
@inventory_option
@become_option
@topology_option
@click.option("--links", default="", metavar="A:p0-B:p0,...", help="Only these cables (default: every planned one).")
@click.option("--duration", type=float, default=5.0, show_default=True, help="Seconds of iperf3 per cable.")
@click.option("--streams", type=int, default=4, show_default=True, help="Parallel iperf3 streams per half.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report: ok, links, problems.")
@click.option("--trust-on-first-use", is_flag=True, help="Accept a node's host key if none is known yet.")
def verify_link(inventory: Path, topology: str | None, links: str, duration: float, streams: int,
                as_json: bool, trust_on_first_use: bool) -> None:
    """Prove each link: carrier, speed, peer, MTU, loss and bandwidth on both PCIe halves.

    Exit 0 when every check passes, 1 when one failed, 2 on bad input or an unreachable node.
    """
    from rich.console import Console

    from sparkctl.verify import measured
    from sparkctl.verify.engine import Options, Verifier
    from sparkctl.verify.expectations import read_expectations
    from sparkctl.views.verify_view import show_report

    if not 0.5 <= duration <= 600:
        raise InputError(f"{duration:g} s is out of range", key="--duration", fix="use 0.5 to 600 seconds")
    if not 1 <= streams <= 128:
        raise InputError(f"{streams} is out of range", key="--streams", fix="use 1 to 128 streams")
    hosts = load_inventory(inventory, vault_used())
    settings = read_settings(hosts, topology)
    expect = read_expectations(hosts)
    targets = node_targets(hosts, trust_on_first_use=trust_on_first_use)
    chosen = tuple(part.strip() for part in links.split(",") if part.strip())
    err = Console(stderr=True)
    with err.status("verify-link") as status:
        def progress(text: str) -> None:
            status.update(f"verify-link: {text}")
            err.log(text)

        report = Verifier(settings, targets, expect, Options(duration, streams, chosen), progress).run()
    try:
        saved = measured.save(inventory, [c.to_dict() for c in report.measured])
    except OSError as exc:
        saved = None
        err.print(f"[yellow]could not save the measured link figures for sparkctl advise: {exc}[/]")
    if as_json:
        click.echo(json.dumps({"inventory": inventory_used().to_dict(), **report.to_dict()}, indent=2))
    else:
        show_report(report, Console())
    if saved is not None:
        err.print(f"measured link figures saved for sparkctl advise: {saved}")
    if not report.ok:
        raise click.exceptions.Exit(1)
