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
from sparkctl.cluster import load_cluster
from sparkctl.commands.options import inventory_option, topology_option
from sparkctl.errors import EnvironmentProblem, SparkctlError
from sparkctl.inventory import load_inventory


@click.command()
@inventory_option
@topology_option
@click.option("--limit", "-l", default=None, metavar="HOSTS",
              help="Only these Sparks (Ansible host pattern, e.g. spark1 or spark1,spark2).")
@click.option("--check", is_flag=True, help="Dry run: show what would change (ansible-playbook --check --diff).")
def provision(inventory: Path, topology: str | None, limit: str | None, check: bool) -> None:
    """Configure the fabric of every Spark in the inventory with Ansible (playbooks/site.yml)."""
    loaded = load_inventory(inventory)
    try:  # bad input stops here, before any node is touched
        hosts = list(load_cluster(inventory, topology).plan.nodes)
    except CablingUnknown:  # every setting checked; the play discovers the cables, then plans
        hosts = list(loaded.hosts)
    hostvars = {host.name: host.values for host in loaded}

    from sparkctl.provisioning import host_keys, progress, runner

    # A node whose host key changed stops the run before Ansible touches any node.
    host_keys.refuse_changed_host_keys(hostvars, host_keys.selected(hosts, limit))

    extravars = runner.ProvisionVars()
    if topology:
        extravars["sparkctl_topology"] = topology
    playbook_run = runner.PlaybookRun(inventory=inventory, extravars=extravars, limit=limit, check=check)
    err = Console(stderr=True, highlight=False)
    err.print(f"[dim]equivalent:[/] {playbook_run.equivalent_command()}", soft_wrap=True)

    with progress.Progress(hosts, err, title="sparkctl provision" + (" --check" if check else "")) as live:
        outcome = runner.run(playbook_run, live.update)
    unreachable = sorted(h for h, s in outcome.recap.hosts.items() if s.unreachable)
    refused = host_keys.explain_unreachable(
        hostvars, {host: outcome.failures[host] for host in unreachable if host in outcome.failures})
    outcome.failures.update({host: problem.message for host, problem in refused.items()})
    err.print(progress.summary(outcome, hosts))

    failed = sorted(h for h, s in outcome.recap.hosts.items() if s.failed)
    if outcome.status == "canceled":
        raise SparkctlError("provisioning was interrupted; nodes may be part way through")
    if refused:
        raise EnvironmentProblem("\n".join(refused[host].message for host in sorted(refused)))
    if unreachable:
        raise EnvironmentProblem(f"unreachable over SSH: {', '.join(unreachable)} (check ansible_host and SSH access)")
    if failed:
        raise SparkctlError(f"provisioning failed on {', '.join(failed)} (see the messages above)")
    if outcome.rc != 0 or outcome.status != "successful":
        raise SparkctlError(f"ansible-playbook ended with {outcome.status} (rc {outcome.rc}):\n{outcome.output_tail}")
    verb = "would be provisioned (check mode, nothing changed)" if check else "provisioned"
    err.print(f"[green]{len(outcome.recap.hosts)} node(s) {verb}[/]")
