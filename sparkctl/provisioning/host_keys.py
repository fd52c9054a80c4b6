"""SSH host keys around a provisioning run: refuse before Ansible starts, explain what Ansible reports.

Before the playbook runs, every node of the run is reached once with host keys checked against the
inventory's known_hosts (the same address, port, key and ssh options Ansible uses). A node that now
presents a different key stops the whole run before any node is touched: the play discovers cables
and plans across all nodes, so going on with the others would only fail later, and less clearly.
This check also holds when Ansible would reuse a ControlPersist connection opened before the key
changed.

When Ansible itself reports a node UNREACHABLE, its message (SSH's whole warning banner, folded
onto one line) is read back into the one message `sparkctl.ssh` gives for the same failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from sparkctl import ssh

_PATTERN_SEPARATORS = re.compile(r"[,:]")


def selected(hosts: Iterable[str], limit: str | None) -> list[str]:
    """The hosts a `--limit` selects, for plain names and globs; every host when the pattern needs Ansible.

    Ansible's exclusions (`!`), intersections (`&`), regexes (`~`) and ranges (`[1:3]`) are not
    evaluated here: the check then covers every host, which can only refuse more, never less.
    """
    names = list(hosts)
    if not limit:
        return names
    if any(char in limit for char in "!&~["):
        return names
    parts = [part.strip() for part in _PATTERN_SEPARATORS.split(limit) if part.strip()]
    if any(part in ("all", "sparks") for part in parts):
        return names
    return [name for name in names if any(fnmatchcase(name, part) for part in parts)]


def targets(hostvars: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> list[ssh.SSHTarget]:
    """How Ansible reaches each named host, as `sparkctl.ssh` targets."""
    return [ssh.SSHTarget.from_hostvars(name, hostvars[name]) for name in names if name in hostvars]


def refuse_changed_host_keys(hostvars: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> None:
    """Raise `HostKeyProblem` naming every node whose host key differs from the recorded one."""
    problems = ssh.changed_host_keys(targets(hostvars, names))
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    nodes = ", ".join(p.message.split(" ", 1)[0] for p in problems)
    raise ssh.HostKeyProblem(
        f"the SSH host keys of {nodes} have changed; nothing was run on any node:\n"
        + "\n".join(f"- {p.message}" for p in problems),
        changed=True,
    )


def explain_unreachable(
    hostvars: Mapping[str, Mapping[str, Any]], messages: Mapping[str, str]
) -> dict[str, ssh.HostKeyProblem]:
    """For each host Ansible reported unreachable because SSH refused its host key, sparkctl's message."""
    explained: dict[str, ssh.HostKeyProblem] = {}
    for host, message in messages.items():
        if host not in hostvars:
            continue
        target = ssh.SSHTarget.from_hostvars(host, hostvars[host])
        problem = ssh.ssh_failure(target, ssh.SSH_FAILURE_STATUS, message)
        if isinstance(problem, ssh.HostKeyProblem):
            explained[host] = problem
    return explained
