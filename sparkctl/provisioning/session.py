"""One playbook run as the user sees it: the equivalent command, a live view per node, the summary,
and the exit code (1 a node failed, 2 a node unreachable). `provision` and `deploy` both run through here."""

from __future__ import annotations

from rich.console import Console

from sparkctl.errors import EnvironmentProblem, SparkctlError
from sparkctl.provisioning import progress, runner


def run_and_report(playbook_run: runner.PlaybookRun, hosts: list[str], title: str, err: Console) -> runner.RunOutcome:
    """Run the playbook with a live view; raise SparkctlError unless every node succeeded."""
    err.print(f"[dim]equivalent:[/] {playbook_run.equivalent_command()}", soft_wrap=True)
    with progress.Progress(hosts, err, title=title + (" --check" if playbook_run.check else "")) as live:
        outcome = runner.run(playbook_run, live.update)
    err.print(progress.summary(outcome, hosts))
    unreachable = sorted(h for h, s in outcome.recap.hosts.items() if s.unreachable)
    failed = sorted(h for h, s in outcome.recap.hosts.items() if s.failed)
    if outcome.status == "canceled":
        raise SparkctlError(f"{title} was interrupted; nodes may be part way through")
    if unreachable:
        raise EnvironmentProblem(f"unreachable over SSH: {', '.join(unreachable)} (check ansible_host and SSH access)")
    if failed:
        raise SparkctlError(f"{title} failed on {', '.join(failed)} (see the messages above)")
    if outcome.rc != 0 or outcome.status != "successful":
        raise SparkctlError(f"ansible-playbook ended with {outcome.status} (rc {outcome.rc}):\n{outcome.output_tail}")
    return outcome
