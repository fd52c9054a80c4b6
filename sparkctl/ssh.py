"""The project's one SSH layer: run a command on a node with the OpenSSH client, host keys always checked.

Everything that talks to a node outside Ansible (verify-link, the lab, tests) goes through here, so
host-key checking, batch mode and the translation of SSH's own failures into one clear message live
in one place. The remote command is built with `shlex.join`, never through a local shell.

SSH's own failures (exit status 255 with an `ssh:`-style message) become `EnvironmentProblem` naming
the host and what to do; a remote command that fails is an ordinary result, or `RemoteCommandFailed`
when the caller asked for `check=True`.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparkctl.errors import EnvironmentProblem, SparkctlError

SSH_BINARY = "ssh"
CONNECT_TIMEOUT_S = 5
SSH_FAILURE_STATUS = 255
"""OpenSSH exits 255 for its own errors (and when the remote command itself exits 255)."""

_HOST_KEY_MARKERS = (
    "host key verification failed",
    "remote host identification has changed",
    "host key is known for",
    "host key for",
)
_AUTH_MARKERS = ("permission denied",)
_UNREACHABLE_MARKERS = (
    "connection refused",
    "no route to host",
    "connection timed out",
    "operation timed out",
    "network is unreachable",
    "could not resolve hostname",
    "name or service not known",
    "connection closed by",
    "connection reset by",
    "kex_exchange_identification",
)


class RemoteCommandFailed(SparkctlError):
    """A command run with `check=True` exited non-zero on the node (a failed check, exit code 1)."""

    def __init__(
        self, target: SSHTarget, argv: Sequence[str], result: subprocess.CompletedProcess[str]
    ) -> None:
        detail = (result.stderr or result.stdout or "").strip().splitlines()
        tail = f": {detail[-1]}" if detail else ""
        super().__init__(f"{target.name}: `{shlex.join(argv)}` exited {result.returncode}{tail}")
        self.result = result


@dataclass(frozen=True)
class SSHTarget:
    """How to reach one node: the same facts Ansible uses (address, user, port, key, extra ssh args)."""

    name: str
    address: str
    user: str = "root"
    port: int = 22
    identity_file: str | None = None
    options: tuple[str, ...] = ()
    trust_on_first_use: bool = False

    @classmethod
    def from_hostvars(
        cls, name: str, hostvars: Mapping[str, Any], *, trust_on_first_use: bool = False
    ) -> SSHTarget:
        """Build a target from a host's inventory variables, reading the keys Ansible's ssh plugin reads."""
        key_file = hostvars.get("ansible_ssh_private_key_file")
        common_args = hostvars.get("ansible_ssh_common_args") or ""
        return cls(
            name=name,
            address=str(hostvars.get("ansible_host") or name),
            user=str(hostvars.get("ansible_user") or "root"),
            port=int(hostvars.get("ansible_port") or 22),
            identity_file=str(key_file) if key_file else None,
            options=tuple(shlex.split(str(common_args))),
            trust_on_first_use=trust_on_first_use,
        )


def command(target: SSHTarget, argv: Sequence[str], *, tty: bool = False) -> list[str]:
    """The local argv that runs `argv` on `target`.

    Our safety options come before the inventory's: OpenSSH keeps the first value it reads for an
    option, so an inventory saying `StrictHostKeyChecking=no` cannot switch host-key checking off.
    """
    checking = "accept-new" if target.trust_on_first_use else "yes"
    args = [
        SSH_BINARY,
        "-o", "BatchMode=yes",
        "-o", f"StrictHostKeyChecking={checking}",
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
        "-p", str(target.port),
        "-l", target.user,
    ]
    if target.identity_file:
        args += ["-i", target.identity_file, "-o", "IdentitiesOnly=yes"]
    if tty:
        args.append("-tt")
    args += [*target.options, "--", target.address, shlex.join(argv)]
    return args


def ssh_failure(target: SSHTarget, returncode: int, stderr: str) -> EnvironmentProblem | None:
    """The problem behind an SSH-level failure, or None when the exit status came from the remote command."""
    if returncode != SSH_FAILURE_STATUS:
        return None
    text = stderr.lower()
    where = f"{target.name} ({target.user}@{target.address}:{target.port})"
    if any(marker in text for marker in _HOST_KEY_MARKERS):
        return EnvironmentProblem(
            f"{where}: SSH host key verification failed — the node's host key is missing from or does not "
            "match known_hosts. Make sure it is the right machine, then put its current key in the "
            "known_hosts file named by UserKnownHostsFile (e.g. `ssh-keyscan` from a trusted network), "
            "or allow trust on first use for a first contact"
        )
    if any(marker in text for marker in _AUTH_MARKERS):
        return EnvironmentProblem(
            f"{where}: the login was refused — add the public key of "
            f"{target.identity_file or 'your SSH key'} to ~{target.user}/.ssh/authorized_keys on the node, "
            "or set ansible_ssh_private_key_file to the right key"
        )
    if any(marker in text for marker in _UNREACHABLE_MARKERS) or text.startswith("ssh:"):
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else "no answer"
        return EnvironmentProblem(
            f"{where} is unreachable over SSH ({reason}) — check that the node is up, that ansible_host "
            "is its management address and that sshd listens there"
        )
    return None


def run(
    target: SSHTarget,
    argv: Sequence[str],
    *,
    timeout: float = 30,
    check: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` on the node and wait for it; SSH-level failures raise `EnvironmentProblem`."""
    try:
        result = subprocess.run(
            command(target, argv),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(
            f"{target.name} ({target.address}): `{shlex.join(argv)}` did not finish within {timeout:g} s — "
            "the node may be hung or the network between here and it is dropping packets"
        ) from None
    except FileNotFoundError:
        raise EnvironmentProblem(
            f"the OpenSSH client `{SSH_BINARY}` is not installed — install the apt package openssh-client"
        ) from None
    problem = ssh_failure(target, result.returncode, result.stderr)
    if problem is not None:
        raise problem
    if check and result.returncode != 0:
        raise RemoteCommandFailed(target, argv, result)
    return result


def start(target: SSHTarget, argv: Sequence[str]) -> subprocess.Popen[str]:
    """Start a long-running remote command (e.g. an iperf3 server); the caller terminates it.

    A pseudo-terminal is forced (`-tt`) so that when the local ssh is terminated the remote side
    gets a hang-up and the command ends with it instead of lingering on the node. Its stderr is
    therefore merged into stdout, with CRLF line ends. stdin is a pipe the caller may leave alone.
    """
    try:
        return subprocess.Popen(
            command(target, argv, tty=True),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except FileNotFoundError:
        raise EnvironmentProblem(
            f"the OpenSSH client `{SSH_BINARY}` is not installed — install the apt package openssh-client"
        ) from None
