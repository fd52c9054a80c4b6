"""`sparkctl plan` and `sparkctl render`: the plan shown, or written out as the files a node gets."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sparkctl.cluster import load_cluster
from sparkctl.commands.options import inventory_option, inventory_used, topology_option, vault_used
from sparkctl.errors import InputError
from sparkctl.render import node_files, write_node_files


@click.command()
@inventory_option
@topology_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable plan (stable schema).")
def plan(inventory: Path, topology: str | None, as_json: bool) -> None:
    """Show the fabric plan: a drawing of nodes and cables, then each node's files."""
    cluster = load_cluster(inventory, topology, vault=vault_used())
    data = cluster.plan.to_dict()
    if as_json:
        for name in cluster.plan.nodes:
            files = node_files(cluster.plan, name, data)
            data["nodes"][name]["netplan"] = files["netplan"].content
            data["nodes"][name]["files"] = {kind: f.to_dict() for kind, f in files.items()}
        click.echo(json.dumps({"inventory": inventory_used().to_dict(), **data}, indent=2))
        return
    from sparkctl.views.plan_view import show_plan

    show_plan(cluster.plan, data)


@click.command()
@inventory_option
@topology_option
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Directory; each node's files go under OUT/<node>/ at their target paths.")
def render(inventory: Path, topology: str | None, out: Path) -> None:
    """Write each node's fabric files under OUT/<node>/ (netplan with mode 0600)."""
    cluster = load_cluster(inventory, topology, vault=vault_used())
    data = cluster.plan.to_dict()
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", key="--out", file=out, fix="pass a directory")
    for name in cluster.plan.nodes:
        for target in write_node_files(out, name, node_files(cluster.plan, name, data)):
            click.echo(str(target))
