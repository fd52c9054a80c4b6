"""The project's one SSH layer: run a command on a node with the OpenSSH client, host keys always checked.

Everything that talks to a node outside Ansible (verify-link, the lab, tests) goes through here, so
host-key checking, batch mode and the translation of SSH's own failures into one clear message live
in one place. The remote command is built with `shlex.join`, never through a local shell.

When the inventory says `ansible_become: true` (a login user that is not root, as on DGX OS), every
command `run` starts goes through sudo, as every Ansible task does: peer probes need raw sockets and
the state files are root's. The sudo password (`ansible_become_password`, vault-encrypted or not)
travels only on the session's stdin, never in an argv or a log.

SSH's own failures (exit status 255 with an `ssh:`-style message) become `EnvironmentProblem` naming
the host and what to do (`HostKeyProblem` when the host key is unknown or changed, with the
commands that accept a new key deliberately); a remote command that fails is an ordinary result,
or `RemoteCommandFailed` when the caller asked for `check=True`.
"""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sparkctl.errors import EnvironmentProblem, InputError, SparkctlError

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


_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_PASSWORD_KEYS = ("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass")
"""Where Ansible's sudo become plugin reads the password from, first found wins."""
BECOME_FIX = ("run with --ask-become-pass (-K), or set ansible_become_password in the inventory (`ansible-vault "
               "encrypt_string --name ansible_become_password`), or let the user run sudo without a password")
_WRONG_PASSWORD = "sudo refused ansible_become_password: it is not that user's password on the node"
_SUDO_FAILURES = (
    ("a password is required", "sudo asks for a password and the inventory gives none: " + BECOME_FIX),
    ("incorrect password", _WRONG_PASSWORD),
    ("sorry, try again", _WRONG_PASSWORD),
    ("no password was provided", _WRONG_PASSWORD),
    ("is not in the sudoers file", "the user may not use sudo there: add it to the sudo group, or log in as root"),
    ("is not allowed to", "sudoers does not allow the user to run this as root: allow it, or log in as root"),
)
_DRAIN = 'while IFS= read -r line; do [ "$line" = "$0" ] && exec "$@"; done; echo "stdin ended early" >&2; exit 125'
"""Runs under sudo: skips stdin up to the marker line. sudo reads the password line only when it asks for
one (not with NOPASSWD, not with a cached ticket); either way the command's stdin starts after the marker.
Shells and sudo read a pipe byte by byte, so nothing past the marker is consumed."""


@dataclass(frozen=True)
class Become:
    """sudo to `user` on the node, as Ansible's `ansible_become*` variables say."""

    user: str = "root"
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_hostvars(cls, name: str, hostvars: Mapping[str, Any], asked: str | None = None) -> Become | None:
        """None unless ansible_become is true; only sudo is supported, as sparkctl init writes it. The
        inventory's password wins over one typed at --ask-become-pass (`asked`), as in Ansible."""
        if str(hostvars.get("ansible_become", False)).strip().lower() not in _TRUE:
            return None
        method = str(hostvars.get("ansible_become_method") or "sudo")
        if method != "sudo":
            raise InputError(f"is {method} for {name}; sparkctl's own commands (verify-link, doctor, status) become "
                             "root with sudo only", key="ansible_become_method",
                             fix="use sudo, or log in as root (ansible_user: root)")
        password = next((hostvars[key] for key in _PASSWORD_KEYS if hostvars.get(key) is not None), asked)
        return cls(user=str(hostvars.get("ansible_become_user") or "root"),
                   password=None if password is None else str(password))

    def wrap(self, argv: Sequence[str], marker: str) -> list[str]:
        """The remote argv that runs `argv` as `user` under sudo (with a password: past the stdin preamble)."""
        if self.password is None:
            return ["sudo", "-H", "-n", "-u", self.user, "--", *argv]
        return ["sudo", "-H", "-S", "-p", "", "-u", self.user, "--", "sh", "-c", _DRAIN, marker, *argv]

    def preamble(self, marker: str) -> str:
        """What goes on stdin before the command's own input: the password (for sudo), then the marker."""
        return "" if self.password is None else f"{self.password}\n{marker}\n"


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
    become: Become | None = None

    @classmethod
    def from_hostvars(
        cls, name: str, hostvars: Mapping[str, Any], *, trust_on_first_use: bool = False,
        become_password: str | None = None,
    ) -> SSHTarget:
        """Build a target from a host's inventory variables, reading the keys Ansible's ssh plugin reads
        (`become_password`: typed at --ask-become-pass)."""
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
            become=Become.from_hostvars(name, hostvars, become_password),
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


class HostKeyProblem(EnvironmentProblem):
    """SSH refused the node's host key (unknown, or different from the one recorded): nothing ran on it."""

    def __init__(self, message: str, *, changed: bool) -> None:
        super().__init__(message)
        self.changed = changed


_KEYGEN_HINT = re.compile(r'ssh-keygen\s+-f\s+"(?P<file>[^"]+)"\s+-R\s+"(?P<host>[^"]+)"')
_OFFENDING = re.compile(r"Offending \S+ key in (?P<file>.+?):(?P<line>\d+)")
_OPTION = re.compile(r"^\s*(?P<key>\w+)\s*(?:=|\s)\s*(?P<value>.*)$")
_FINGERPRINT = re.compile(
    r"fingerprint for the (?P<kind>\w+) key sent by the remote host is\s+(?P<fp>\S+?)\.?(?:\s|$)")


def known_hosts_files(target: SSHTarget) -> list[str]:
    """The known_hosts files SSH checks for `target`: UserKnownHostsFile of its options, else ~/.ssh/known_hosts."""
    options = list(target.options)
    values = [options[i + 1] for i, arg in enumerate(options[:-1]) if arg == "-o"]
    values += [arg[2:] for arg in options if arg.startswith("-o") and len(arg) > 2]
    for value in values:
        option = _OPTION.match(value)
        if option and option["key"].lower() == "userknownhostsfile" and option["value"].strip():
            return shlex.split(option["value"])
    return [str(Path("~/.ssh/known_hosts").expanduser())]


def known_hosts_name(target: SSHTarget) -> str:
    """How known_hosts names the node: its address, in brackets with the port when that is not 22."""
    return target.address if target.port == 22 else f"[{target.address}]:{target.port}"


def host_key_problem(target: SSHTarget, stderr: str) -> HostKeyProblem:
    """The message for a refused host key: which node, which known_hosts file, and how to accept a new key
    deliberately (the commands, with the file and the name the key is recorded under)."""
    where = f"{target.name} ({target.user}@{target.address}:{target.port})"
    hint = _KEYGEN_HINT.search(stderr)
    offending = _OFFENDING.search(stderr)
    known_hosts = hint["file"] if hint else offending["file"] if offending else known_hosts_files(target)[0]
    recorded = hint["host"] if hint else known_hosts_name(target)
    keyscan = f"`ssh-keyscan -p {target.port} {target.address} >> {shlex.quote(known_hosts)}`"
    first_use = "(or `sparkctl verify-link --trust-on-first-use` once)"
    text = stderr.lower()
    if "remote host identification has changed" not in text and " has changed " not in text:
        return HostKeyProblem(
            f"{where}: SSH host key verification failed — no host key for {recorded} is recorded in the "
            f"known_hosts file {known_hosts}, so the connection was refused and nothing was run on the "
            f"node. Make sure it is the right machine, then record its key from a network you trust: "
            f"{keyscan} {first_use}",
            changed=False,
        )
    line = f" (line {offending['line']})" if offending else ""
    presented = _FINGERPRINT.search(stderr)
    kind = presented["kind"].lower() if presented else "ed25519"
    shown = f" It now presents the {presented['kind']} key {presented['fp']}." if presented else ""
    return HostKeyProblem(
        f"{where}: SSH host key verification failed — the node's host key has changed since it was "
        f"recorded in the known_hosts file {known_hosts}{line}, so the connection was refused and nothing "
        f"was run on the node. Either the node was reinstalled or its key regenerated, or another machine "
        f"answers at {target.address}.{shown} If you know why, accept the new key deliberately: compare "
        f"that fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_{kind}_key.pub` on the node's console, "
        f"remove the old key with `ssh-keygen -R {shlex.quote(recorded)} -f {shlex.quote(known_hosts)}`, "
        f"then record the new one: {keyscan} {first_use}",
        changed=True,
    )


def ssh_failure(target: SSHTarget, returncode: int, stderr: str) -> EnvironmentProblem | None:
    """The problem behind an SSH-level failure, or None when the exit status came from the remote command."""
    if returncode != SSH_FAILURE_STATUS:
        return None
    text = stderr.lower()
    where = f"{target.name} ({target.user}@{target.address}:{target.port})"
    if any(marker in text for marker in _HOST_KEY_MARKERS):
        return host_key_problem(target, stderr)
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


def sudo_failure(target: SSHTarget, result: subprocess.CompletedProcess[str]) -> EnvironmentProblem | None:
    """What sudo itself refused (exit status 1 and sudo's own words on stderr), or None. Nothing ran then."""
    if target.become is None or result.returncode != 1:
        return None
    said = [line for line in result.stderr.lower().splitlines()
            if line.startswith(("sudo:", "sorry, try again")) or "is not in the sudoers file" in line]
    for marker, why in _SUDO_FAILURES:
        if any(marker in line for line in said):
            return EnvironmentProblem(f"{target.name} ({target.user}@{target.address}): sudo to "
                                      f"{target.become.user} failed, nothing was run: {why}")
    return None


def changed_host_keys(targets: Sequence[SSHTarget], timeout: float = 15) -> list[HostKeyProblem]:
    """Connect to every target at once and return the refusals of a changed host key, in target order.

    Any other outcome (unreachable, login refused, an unknown key) is left to the caller's own run
    to report: this only finds nodes that now present a key different from the recorded one.
    """

    def probe(target: SSHTarget) -> HostKeyProblem | None:
        try:  # the handshake is what is checked: no sudo (nor its password) for `true`
            run(replace(target, become=None), ["true"], timeout=timeout)
        except HostKeyProblem as problem:
            return problem if problem.changed else None
        except EnvironmentProblem:
            return None
        return None

    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(targets))) as pool:
        return [problem for problem in pool.map(probe, targets) if problem is not None]


def run(
    target: SSHTarget,
    argv: Sequence[str],
    *,
    timeout: float = 30,
    check: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` on the node and wait for it (under sudo when the target says become); SSH-level and sudo
    failures raise `EnvironmentProblem`."""
    remote, stdin = list(argv), input
    if target.become is not None:
        marker = f"sparkctl-{secrets.token_hex(8)}"
        remote = target.become.wrap(argv, marker)
        preamble = target.become.preamble(marker)
        stdin = preamble + (input or "") if preamble else input
    try:
        result = subprocess.run(
            command(target, remote),
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
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
    problem = ssh_failure(target, result.returncode, result.stderr) or sudo_failure(target, result)
    if problem is not None:
        raise problem
    if check and result.returncode != 0:
        raise RemoteCommandFailed(target, argv, result)
    return result


def start(target: SSHTarget, argv: Sequence[str]) -> subprocess.Popen[str]:
    """Start a long-running remote command (e.g. an iperf3 server); the caller terminates it.

    Not under sudo: the servers started this way (iperf3, perftest) need no root, and a password
    written to a pseudo-terminal would be echoed back.

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
