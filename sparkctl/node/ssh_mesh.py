"""Can this Spark SSH to each of its peers: run on the node, every peer at once, one verdict per peer.

The `sparkctl_ssh_mesh_check` step (`steps`). Two ways to connect:

- by name through the user's `~/.ssh/config`, as mpirun and Ray do (the block the mesh role writes
  names the cluster key, the cluster's known_hosts and `StrictHostKeyChecking yes`);
- with one given key only (`identity`), every option on the command line and no config file read,
  so a key rotation can prove a new key before it is put in use: no other key, agent or shared
  connection can stand in for it, and the peer's host key is checked against the cluster's
  known_hosts under its inventory name (`HostKeyAlias`).

Both are batch mode (no password, no prompt). Standard library only: this runs on the node.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

Run = Callable[[Sequence[str], float], tuple[int, str, str]]
ERROR_CHARS = 300


def ssh_argv(
    peer: Mapping[str, Any], user: str, identity: str | None, known_hosts: str | None, timeout: int,
) -> list[str]:
    """The ssh command line that logs in to `peer` ({name, address, port}) and runs `true`."""
    common = ["ssh", "-n", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={timeout}"]
    if identity is None:
        return [*common, "--", str(peer["name"]), "true"]
    if not known_hosts:
        raise ValueError("a check with a given key needs the cluster's known_hosts")
    return [
        *common[:1], "-F", "none", *common[1:],
        "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", f"IdentityFile={identity}",
        "-o", "PreferredAuthentications=publickey",
        "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes", "-o", f"HostKeyAlias={peer['name']}",
        "-o", "ControlMaster=no", "-o", "ControlPath=none",
        "-p", str(int(peer.get("port") or 22)), "-l", user, "--", str(peer.get("address") or peer["name"]), "true",
    ]


def as_user(argv: list[str], user: str) -> list[str]:
    """`argv` run as `user` (runuser when this process is someone else, e.g. root under become)."""
    if pwd.getpwuid(os.geteuid()).pw_name == user:
        return argv
    return ["runuser", "-u", user, "--", *argv]


def last_error(stderr: str) -> str:
    """What ssh said last (e.g. `Permission denied (publickey).`, `Host key verification failed.`)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:ERROR_CHARS] if lines else ""


def _run(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return 255, "", f"no answer within {timeout:.0f} s"
    except OSError as exc:
        return 255, "", str(exc)
    return done.returncode, done.stdout, done.stderr


def check_peers(
    peers: Sequence[Mapping[str, Any]],
    user: str,
    identity: str | None = None,
    known_hosts: str | None = None,
    timeout: int = 5,
    run: Run = _run,
) -> list[dict[str, Any]]:
    """SSH to every peer at once; per peer, in the order given: `name`, `ok`, `rc` and ssh's `error`."""

    def one(peer: Mapping[str, Any]) -> dict[str, Any]:
        argv = as_user(ssh_argv(peer, user, identity, known_hosts, timeout), user)
        rc, _, stderr = run(argv, timeout * 3 + 5)
        return {"name": str(peer["name"]), "ok": rc == 0, "rc": rc, "error": "" if rc == 0 else last_error(stderr)}

    if not peers:
        return []
    with ThreadPoolExecutor(max_workers=min(len(peers), 16)) as pool:
        return list(pool.map(one, peers))
