"""`sparkctl keys rotate`: a new cluster SSH key on every Spark, without the Sparks ever losing each other.

Thin by design, like `provision`: the inventory is checked first (bad input exits 2 before any node
is touched), then playbooks/ssh_mesh.yml runs with `sparkctl_ssh_mesh_rotate: true`, the same run
as the printed ansible-playbook command. The role (roles/sparkctl_ssh_mesh/tasks/rotate.yml) makes
the new key on one Spark, authorizes it beside the old one everywhere, proves it from every Spark to
every other and only then puts it in use and removes the old key's lines; a Spark that does not get
through stops the rotation with the old key authorized and in use, and is named (exit 1; 2 when a
Spark is unreachable or its host key changed).
"""

from __future__ import annotations

from pathlib import Path

import click

from sparkctl.cabling import CablingUnknown
from sparkctl.cluster import plan_cluster
from sparkctl.commands.options import become_option, become_used, inventory_option, vault_used
from sparkctl.inventory import load_inventory
from sparkctl.mesh_key import refuse_rotation_in_inventory


@click.group()
def keys() -> None:
    """The cluster SSH key the Sparks use to reach each other (mpirun, Ray)."""


@keys.command()
@inventory_option
@become_option
@click.option("--check", is_flag=True, help="Dry run: say what the rotation would do, change nothing.")
def rotate(inventory: Path, check: bool) -> None:
    """Replace the cluster key on every Spark: the new key is proven everywhere before the old one goes."""
    vault = vault_used()
    loaded = load_inventory(inventory, vault)
    refuse_rotation_in_inventory(loaded)
    try:  # bad input stops here, before any node is touched
        hosts = list(plan_cluster(loaded).plan.nodes)
    except CablingUnknown:  # every setting checked; the play discovers the cables, then plans
        hosts = list(loaded.hosts)

    from rich.console import Console

    from sparkctl.provisioning import runner
    from sparkctl.provisioning.session import run_and_report

    extravars = runner.ProvisionVars(sparkctl_ssh_mesh_rotate=True)
    playbook_run = runner.PlaybookRun(inventory=inventory, extravars=extravars, check=check,
                                      playbook=runner.SSH_MESH_PLAYBOOK, vault=vault,
                                      become=become_used())
    err = Console(stderr=True, highlight=False)
    outcome = run_and_report(playbook_run, hosts, {host.name: host.values for host in loaded},
                             "sparkctl keys rotate", err)
    if check:
        err.print("[green]check mode: nothing changed[/]")
    else:
        err.print(f"[green]cluster key rotated on {len(outcome.recap.hosts)} node(s)[/]")
