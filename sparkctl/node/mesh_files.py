"""The cluster SSH key's files on a node, read and kept as planned in one call each. Stdlib only.

The `sparkctl_ssh_mesh` role first asks every Spark what it has (the mesh user's account, whether the
cluster key exists, its SSH host keys), then has each write everything at once: the key pair, its
authorized_keys line (any other line of the same key removed), the cluster's known_hosts and the
~/.ssh/config block. One round trip each instead of a task per file keeps a re-run cheap; every file is
written only when it differs, atomically, owned by the mesh user.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import ensure

ETC_SSH = Path("/etc/ssh")
BLOCK_MARKER = "# {mark} sparkctl cluster (managed by sparkctl)"
_HOST_KEY = re.compile(r"^\S+ \S+")


class MeshFilesError(Exception):
    """The mesh user or its files are not as the role needs them; the message says what to change."""


@dataclass(frozen=True)
class Account:
    """The mesh user as the node knows it."""

    user: str
    home: Path
    uid: int
    gid: int
    group: str

    @classmethod
    def of(cls, user: str) -> Account:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise MeshFilesError(f"the mesh user {user!r} does not exist on this node "
                                 "(sparkctl_ssh_mesh_user)") from None
        try:
            group = grp.getgrgid(entry.pw_gid).gr_name
        except KeyError:
            group = str(entry.pw_gid)
        return cls(user, Path(entry.pw_dir), entry.pw_uid, entry.pw_gid, group)

    @property
    def ssh_dir(self) -> Path:
        return self.home / ".ssh"


def host_keys(etc_ssh: Path = ETC_SSH) -> list[str]:
    """The node's SSH host keys, `TYPE BLOB` each, in a stable order."""
    keys = []
    for path in sorted(etc_ssh.glob("ssh_host_*_key.pub")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if match := _HOST_KEY.match(line.strip()):
                keys.append(match.group(0))
    return keys


def read(user: str, key_name: str, etc_ssh: Path = ETC_SSH, key_pair: bool = False) -> dict[str, Any]:
    """What the role needs to know of this node before it writes anything; with `key_pair`, the cluster key's
    two files too (`private_key`, `public_key`), from the Spark that holds it."""
    account = Account.of(user)
    key = account.ssh_dir / key_name
    found = {"home": str(account.home), "uid": account.uid, "gid": account.gid, "group": account.group,
             "key_exists": key.is_file(), "host_keys": host_keys(etc_ssh)}
    if key_pair:
        try:
            found["private_key"] = key.read_text(encoding="utf-8")
            found["public_key"] = key.with_name(key.name + ".pub").read_text(encoding="utf-8")
        except OSError as error:
            raise MeshFilesError(f"cannot read the cluster key: {error}") from None
    return found


def authorized(text: str, line: str, stale: str) -> str:
    """authorized_keys `text` with every line matching `stale` removed and `line` present (appended when
    missing), other lines untouched."""
    pattern = re.compile(stale)
    kept = [existing for existing in text.splitlines() if not pattern.search(existing)]
    if line not in kept:
        kept.append(line)
    return "\n".join(kept) + "\n"


def with_block(text: str, block: str) -> str:
    """~/.ssh/config `text` with sparkctl's marked block set to `block`: replaced where it is, else put first
    (ssh takes the first value it reads for an option, so the cluster's settings must come first)."""
    begin, end = BLOCK_MARKER.format(mark="BEGIN"), BLOCK_MARKER.format(mark="END")
    wanted = [begin, *block.splitlines(), end]
    lines = text.splitlines()
    if begin in lines and end in lines[lines.index(begin):]:
        start = lines.index(begin)
        stop = lines.index(end, start)
        lines[start:stop + 1] = wanted
    else:
        lines = wanted + lines
    return "\n".join(lines) + "\n"


def install(account: Account, key_name: str, known_hosts_name: str, *, private_key: str | None, public_key: str | None,
            line: str | None, stale: str | None, known_hosts: str, config_block: str, leftovers: Sequence[str],
            check_mode: bool) -> dict[str, Any]:
    """Keep the mesh user's cluster files as planned; returns `changed`, `diff` (key content never shown)
    and `removed` (leftover files)."""
    owner = (account.uid, account.gid)
    ssh_dir = account.ssh_dir
    diffs: list[dict[str, str]] = []

    def keep(path: Path, text: str, mode: int, secret: bool = False) -> None:
        diff = ensure(path, text, mode, check_mode, dir_mode=0o700, owner=owner, secret=secret)
        if diff is not None:
            diffs.append(diff)

    made_dir = _keep_dir(ssh_dir, owner, check_mode)
    key = ssh_dir / key_name
    if private_key is not None and public_key is not None:
        keep(key, private_key if private_key.endswith("\n") else private_key + "\n", 0o600, secret=True)
        keep(key.with_name(key.name + ".pub"), public_key if public_key.endswith("\n") else public_key + "\n", 0o644)
    if line is not None and stale is not None:
        path = ssh_dir / "authorized_keys"
        keep(path, authorized(_text(path), line, stale), 0o600)
    keep(ssh_dir / known_hosts_name, known_hosts, 0o644)
    config = ssh_dir / "config"
    keep(config, with_block(_text(config), config_block), 0o600)
    removed = [name for name in leftovers if Path(name).exists()]
    if not check_mode:
        for name in removed:
            Path(name).unlink()
    return {"changed": bool(diffs or removed or made_dir), "diff": diffs, "removed": removed}


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _keep_dir(path: Path, owner: tuple[int, int], check_mode: bool) -> bool:
    """Make ~/.ssh a directory of the mesh user's, 0700 (sshd refuses keys in a directory others can write);
    True when it had to change."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        stat = None
    if stat is not None and stat.st_mode & 0o7777 == 0o700 and (stat.st_uid, stat.st_gid) == owner:
        return False
    if not check_mode:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        os.chown(path, *owner)
    return True
