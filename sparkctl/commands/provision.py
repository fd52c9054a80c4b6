"""`sparkctl provision`: configure the fabric on the nodes by running playbooks/site.yml.

Thin by design (one playbook, a few typed extra variables): the inventory is checked with the same
planner the playbooks use before any node is touched, the equivalent ansible-playbook command is
printed so the run can be repeated without sparkctl, and the exit code says what happened:
0 every node provisioned, 1 a node failed, 2 bad input or a node unreachable. A node whose SSH host
key changed stops the run before Ansible starts (see sparkctl/provisioning/host_keys.py).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from sparkctl.cabling import CablingUnknown
from sparkctl.cluster import plan_cluster
from sparkctl.commands.options import (
    become_option,
    become_used,
    inventory_option,
    topology_option,
    vault_used,
)
from sparkctl.inventory import load_inventory
from sparkctl.mesh_key import refuse_rotation_in_inventory


@click.command()
@inventory_option
@become_option
@topology_option
@click.option("--limit", "-l", default=None, metavar="HOSTS",
              help="Only these Sparks (Ansible host pattern, e.g. spark1 or spark1,spark2).")
@click.option("--check", is_flag=True, help="Dry run: show what would change (ansible-playbook --check --diff).")
def provision(inventory: Path, topology: str | None, limit: str | None, check: bool) -> None:
    """Configure the fabric of every Spark in the inventory with Ansible (playbooks/site.yml)."""
    vault = vault_used()
    loaded = load_inventory(inventory, vault)
    refuse_rotation_in_inventory(loaded)  # a rotation is `sparkctl keys rotate`, one run, never every provision
    try:  # bad input stops here, before any node is touched
        hosts = list(plan_cluster(loaded, topology).plan.nodes)
    except CablingUnknown:  # every setting checked; the play discovers the cables, then plans
        hosts = list(loaded.hosts)
    hostvars = {host.name: host.values for host in loaded}

    from sparkctl.provisioning import runner
    from sparkctl.provisioning.session import run_and_report

    extravars = runner.ProvisionVars()
    if topology:
        extravars["sparkctl_topology"] = topology
    playbook_run = runner.PlaybookRun(inventory=inventory, extravars=extravars, limit=limit, check=check,
                                      vault=vault, become=become_used())
    err = Console(stderr=True, highlight=False)
    outcome = run_and_report(playbook_run, hosts, hostvars, "sparkctl provision", err)
    verb = "would be provisioned (check mode, nothing changed)" if check else "provisioned"
    err.print(f"[green]{len(outcome.recap.hosts)} node(s) {verb}[/]")
