"""One playbook run as the user sees it: host keys checked first, the equivalent command, a live view
per node, the summary, and the exit code (1 a node failed, 2 a node unreachable or its host key changed).
`provision` and `deploy` both run through here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console

from sparkctl.errors import EnvironmentProblem, SparkctlError
from sparkctl.provisioning import host_keys, progress, runner
from sparkctl.ssh import BECOME_FIX


def run_and_report(
    playbook_run: runner.PlaybookRun, hosts: list[str], hostvars: Mapping[str, Mapping[str, Any]], title: str,
    err: Console,
) -> runner.RunOutcome:
    """Run the playbook with a live view; raise SparkctlError unless every node succeeded."""
    # A node whose host key changed stops the run before Ansible touches any node.
    host_keys.refuse_changed_host_keys(hostvars, host_keys.selected(hosts, playbook_run.limit))
    err.print(f"[dim]equivalent:[/] {playbook_run.equivalent_command()}", soft_wrap=True)
    with progress.Progress(hosts, err, title=title + (" --check" if playbook_run.check else "")) as live:
        outcome = runner.run(playbook_run, live.update)
    unreachable = sorted(h for h, s in outcome.recap.hosts.items() if s.unreachable)
    refused = host_keys.explain_unreachable(
        hostvars, {host: outcome.failures[host] for host in unreachable if host in outcome.failures})
    outcome.failures.update({host: problem.message for host, problem in refused.items()})
    outcome.failures.update({host: explain_sudo(message) for host, message in outcome.failures.items()})
    err.print(progress.summary(outcome, hosts))
    failed = sorted(h for h, s in outcome.recap.hosts.items() if s.failed)
    if outcome.status == "canceled":
        raise SparkctlError(f"{title} was interrupted; nodes may be part way through")
    if refused:
        raise EnvironmentProblem("\n".join(refused[host].message for host in sorted(refused)))
    if unreachable:
        raise EnvironmentProblem(f"unreachable over SSH: {', '.join(unreachable)} (check ansible_host and SSH access)")
    if failed:
        raise SparkctlError(f"{title} failed on {', '.join(failed)} (see the messages above)")
    if outcome.rc != 0 or outcome.status != "successful":
        raise SparkctlError(f"ansible-playbook ended with {outcome.status} (rc {outcome.rc}):\n{outcome.output_tail}")
    return outcome


def explain_sudo(message: str) -> str:
    """Ansible's word for a sudo that wanted a password, with what to do about it."""
    said = message.lower()
    if "missing sudo password" in said:
        return f"{message}: sudo on the node asks for a password — {BECOME_FIX}"
    if "incorrect sudo password" in said:
        return f"{message}: the become password is not the login user's sudo password on the node"
    return message
