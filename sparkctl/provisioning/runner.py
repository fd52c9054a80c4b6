"""Run `playbooks/site.yml` with ansible-runner: typed extra variables in, typed events out.

ansible-runner (Ansible's own Python interface) runs ansible-playbook in a child process and calls
back for every event, which is what the live per-node progress needs. Its private data directory
(artifacts, job events, the command line) is a fresh 0700 temporary directory removed after the run,
so nothing it records outlives the run or is readable by other users; tasks that handle keys are
`no_log`, so their results never reach the events in the first place.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from sparkctl.become import BecomePassword
from sparkctl.errors import EnvironmentProblem
from sparkctl.provisioning.events import Event, HostResult, Recap, parse_event
from sparkctl.vault import VaultPasswords

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_PLAYBOOK = REPO_ROOT / "playbooks" / "site.yml"
SERVICES_PLAYBOOK = REPO_ROOT / "playbooks" / "services.yml"
SSH_MESH_PLAYBOOK = REPO_ROOT / "playbooks" / "ssh_mesh.yml"
ANSIBLE_CONFIG = REPO_ROOT / "ansible.cfg"
_OUTPUT_TAIL_LINES = 15


class ProvisionVars(TypedDict, total=False):
    """The extra variables `sparkctl provision`, `deploy` and `keys rotate` pass; each overrides the inventory
    for the run."""

    sparkctl_topology: str
    sparkctl_services_only: list[str]
    sparkctl_ssh_mesh_rotate: bool


@dataclass(frozen=True)
class PlaybookRun:
    """One ansible-playbook run: what to run, against which inventory, with which options."""

    inventory: Path
    extravars: ProvisionVars = field(default_factory=lambda: ProvisionVars())
    limit: str | None = None
    check: bool = False
    playbook: Path = SITE_PLAYBOOK
    vault: VaultPasswords = field(default_factory=VaultPasswords)
    """The vault passwords sparkctl read the inventory with; the run gets the same."""
    become: BecomePassword = field(default_factory=BecomePassword)
    """The sudo password typed at --ask-become-pass, if the command was asked to prompt for it."""
    extravars_file: Path | None = None
    """More extra variables, in a JSON file ansible-playbook reads (`-e @FILE`): for values that may hold
    secrets read from the inventory's vault, which must not appear on a printed command line."""

    def options(self) -> list[str]:
        """ansible-playbook options beyond inventory, playbook and extra vars."""
        options: list[str] = self.vault.playbook_options() + self.become.playbook_options()
        if self.extravars_file is not None:
            options += ["--extra-vars", f"@{self.extravars_file}"]
        if self.limit:
            options += ["--limit", self.limit]
        if self.check:
            options += ["--check", "--diff"]
        return options

    def equivalent_command(self) -> str:
        """The plain ansible-playbook command line that does the same, for the user to copy."""
        argv = [ansible_playbook(), "-i", str(self.inventory.resolve()), str(self.playbook)]
        if self.extravars:
            argv += ["-e", json.dumps(dict(self.extravars), sort_keys=True)]
        return f"ANSIBLE_CONFIG={shlex.quote(str(ANSIBLE_CONFIG))} {shlex.join(argv + self.options())}"


@dataclass
class RunOutcome:
    """How the run ended: ansible-playbook's status and rc, each host's counters and last failure."""

    status: str
    rc: int
    recap: Recap
    failures: dict[str, str]
    """Per host, the message of the last task that failed on it (the one that stopped it)."""
    notes: dict[str, list[str]]
    """Per host, what the play's debug tasks reported (skipped settings, plan warnings)."""
    output_tail: str = ""
    """The end of ansible-playbook's own output, for errors that are not a task's (syntax, inventory)."""


def ansible_playbook() -> str:
    """ansible-playbook of the environment sparkctl runs in, so the sparkctl_plan lookup can import sparkctl."""
    beside = Path(sys.executable).with_name("ansible-playbook")
    if beside.exists():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise EnvironmentProblem(
            "ansible-playbook is not installed next to this Python or on PATH: install sparkctl with its "
            "dependencies (pip install -e .) in one virtual environment"
        )
    return found


def run(playbook_run: PlaybookRun, on_event: Callable[[Event], None]) -> RunOutcome:
    """Run the playbook, calling `on_event` for every event the display uses; blocks until it ends."""
    import ansible_runner  # type: ignore[import-untyped]  # slow import, only when provisioning

    failures: dict[str, str] = {}
    notes: dict[str, list[str]] = {}
    recap = Recap()

    def handle(raw: Mapping[str, Any]) -> bool:
        nonlocal recap
        event = parse_event(raw)
        if isinstance(event, HostResult):
            if event.outcome in ("failed", "unreachable"):
                failures[event.host] = event.message or event.task
            elif event.note:
                notes.setdefault(event.host, []).append(event.message)
        elif isinstance(event, Recap):
            recap = event
        if event is not None:
            on_event(event)
        return True

    private = Path(tempfile.mkdtemp(prefix="sparkctl-provision-"))  # mode 0700
    try:
        thread, runner = ansible_runner.run_async(
            private_data_dir=str(private),
            project_dir=str(REPO_ROOT),
            playbook=str(playbook_run.playbook),
            inventory=str(playbook_run.inventory.resolve()),
            extravars=dict(playbook_run.extravars),
            cmdline=shlex.join(playbook_run.options()) or None,
            envvars=_environment(),
            passwords={**playbook_run.vault.prompt_answers(), **playbook_run.become.prompt_answers()},
            event_handler=handle,
            quiet=True,
            suppress_env_files=True,
        )
        thread.join()
        output = _read(private / "artifacts" / str(runner.config.ident) / "stdout")
        tail = "\n".join(output.strip().splitlines()[-_OUTPUT_TAIL_LINES:])
        return RunOutcome(str(runner.status), int(runner.rc or 0), recap, failures, notes, tail)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _environment() -> dict[str, str]:
    """The repository's ansible.cfg wherever sparkctl runs from, this environment's ansible-playbook first
    on PATH (ansible-runner runs `ansible-playbook` by name; its `binary` option would drop the playbook),
    and host-key checking on: ansible-runner turns it off unless the environment says otherwise, and
    Ansible's `StrictHostKeyChecking=no` then comes before the inventory's own ssh options, which OpenSSH
    reads first-value-wins."""
    bin_dir = str(Path(ansible_playbook()).parent)
    return {"ANSIBLE_CONFIG": str(ANSIBLE_CONFIG), "ANSIBLE_HOST_KEY_CHECKING": "True",
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
