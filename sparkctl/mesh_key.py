"""The cluster SSH key: its authorized_keys line, the lines a rotation retires, and when a rotation may go on.

The `sparkctl_ssh_mesh` role makes one key pair per cluster and authorizes it on every Spark with
`from=` limited to the cluster's own addresses. `sparkctl keys rotate` replaces it without a moment
in which two Sparks cannot reach each other: the new key is authorized beside the old one and
proven from every Spark to every other before it is put in use, and only then are the old key's
lines removed. What the role asks at each step (which lines, may the rotation go on, what to tell
the user) is decided here, for the lookups `sparkctl_mesh_key` and `sparkctl_mesh_rotation`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparkctl.errors import InputError
from sparkctl.inventory import Inventory

MESH_KEY_COMMENT = "sparkctl cluster key"
ROTATE_VAR = "sparkctl_ssh_mesh_rotate"

_PUBLIC_KEY = re.compile(r"^(?P<type>(ssh|ecdsa-sha2|sk)-[A-Za-z0-9@.-]+) (?P<blob>[A-Za-z0-9+/]+={0,3})(?: .*)?$")
_FIX = "remove the cluster key files from ~/.ssh on the nodes and provision again"


@dataclass(frozen=True)
class PublicKey:
    """One OpenSSH public key: its type and base64 blob (the comment is not part of the key)."""

    type: str
    blob: str

    @classmethod
    def parse(cls, text: str, what: str = "cluster public key") -> PublicKey:
        match = _PUBLIC_KEY.match(text.strip())
        if match is None or "\n" in text.strip():
            raise InputError("is not one OpenSSH public key line", key=what, fix=_FIX)
        return cls(match["type"], match["blob"])

    @property
    def fingerprint(self) -> str:
        """What `ssh-keygen -l` prints for it: SHA256 of the key's bytes, base64 without padding."""
        digest = hashlib.sha256(base64.b64decode(self.blob + "=" * (-len(self.blob) % 4))).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def mesh_authorization(public_key: str, sources: Sequence[str]) -> dict[str, str]:
    """The authorized_keys line of the cluster key, usable only from `sources` (sshd's `from=`).

    Returns the `line` to have in authorized_keys and `stale`, a regular expression matching every
    other line of the same key (an older, unrestricted or differently restricted one) to remove.
    """
    key = PublicKey.parse(public_key)
    if not sources:
        raise InputError("the cluster has no addresses to allow the key from", key="sparks",
                         fix="give every Spark its ansible_host")
    line = f'from="{",".join(sources)}" {key.type} {key.blob} {MESH_KEY_COMMENT}'
    stale = f"^(?!{re.escape(line)}$).*(^|\\s){re.escape(key.blob)}(\\s|$)"
    return {"line": line, "stale": stale}


def every_line(public_key: str) -> str:
    """A regular expression matching every authorized_keys line of the key, however restricted (to withdraw it)."""
    return f"(^|\\s){re.escape(PublicKey.parse(public_key).blob)}(\\s|$)"


def retired_lines(line: str, retired_keys: Sequence[str]) -> str:
    """A regular expression matching, once the key of `line` is proven and in use, every authorized_keys line
    to remove: any line of a retired key, and any other line sparkctl wrote for a cluster key (one left by
    an earlier rotation that stopped part way). `line` itself and keys sparkctl did not write stay."""
    blobs = [re.escape(PublicKey.parse(key, "retired cluster public key").blob) for key in retired_keys]
    marks = [f".*(^|\\s)({'|'.join(blobs)})(\\s|$)"] if blobs else []
    marks.append(f"(.*\\s)?(ssh|ecdsa-sha2|sk)-\\S+ [A-Za-z0-9+/]+={{0,3}} {re.escape(MESH_KEY_COMMENT)}\\s*$")
    return f"^(?!{re.escape(line)}$)({'|'.join(marks)})"


# --- may the rotation go on ---------------------------------------------------------------------------------

STAGES = {
    "start": "before the rotation began",
    "staged": "while the new key was being authorized and proven",
    "in use": "after the new key was put in use",
}


@dataclass(frozen=True)
class Verdict:
    """Whether every Spark got through a step of the rotation, and if not, what to tell the user."""

    ok: bool
    failed: list[str]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "failed": self.failed, "message": self.message}


def rotation_verdict(
    stage: str,
    everyone: Sequence[str],
    active: Sequence[str],
    checks: Mapping[str, Sequence[Mapping[str, Any]]],
    old_fingerprint: str = "",
) -> Verdict:
    """May the rotation go past `stage`? Only when every Spark is still in the run and every check SSH from
    each to each other one succeeded.

    `checks` maps a Spark to what `sparkctl_ssh_mesh_check` reported from it (`name`, `ok`, `error` per
    peer). The message names every Spark that fell out of the run and every pair that could not connect,
    and says what became of the keys: before the new key is in use, the old one stays authorized and in
    use everywhere (the new one is withdrawn); after, the old one is put back in use and both stay
    authorized, since a Spark that no longer answers may already use the new one. `failed` lists the
    Sparks that fell out of the run, then those others could not reach, then those that could not reach.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown rotation stage {stage!r}")
    problems: list[str] = []
    dropped: list[str] = []
    pairs: list[tuple[str, str]] = []
    for host in everyone:
        if host not in active:
            dropped.append(host)
            problems.append(f"{host} failed or became unreachable {STAGES[stage]} (its own error is above)")
    for host in active:
        if stage == "start":
            break
        report = checks.get(host)
        if report is None:
            dropped.append(host)
            problems.append(f"{host} did not report its SSH check")
            continue
        for peer in report:
            if not peer.get("ok"):
                pairs.append((host, str(peer.get("name"))))
                reason = str(peer.get("error") or f"exit status {peer.get('rc')}").rstrip(".")
                problems.append(f"{host} cannot SSH to {peer.get('name')} with the new cluster key ({reason})")
    if not problems:
        return Verdict(True, [], "")
    old = f"the old cluster key {old_fingerprint}" if old_fingerprint else "the old cluster key"
    if stage == "start":
        outcome = f"Nothing was rotated: {old} stays authorized and in use on every Spark"
    elif stage == "staged":
        outcome = (f"The new key was not put in use, and was withdrawn wherever the Spark answered: {old} stays "
                   "authorized and in use on every Spark")
    else:
        outcome = (f"The old key was put back in use wherever the Spark answered, and both keys stay authorized "
                   f"on every Spark, so each still reaches the others: {old} stays authorized everywhere")
    # Whoever fell out of the run first, then the Sparks others could not reach, then those that could not reach.
    failed = list(dict.fromkeys([*dropped, *(target for _, target in pairs), *(source for source, _ in pairs)]))
    return Verdict(False, failed,
                   f"Rotating the cluster key stopped: {'; '.join(problems)}. {outcome}. Fix the cause named "
                   "here and run `sparkctl keys rotate` again.")


def ssh_peers(nodes: Sequence[Any], hostvars: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every Spark as a peer to SSH to: inventory `name`, `address` (its ansible_host) and `port`.

    `nodes` are the settings' nodes (`name`, `management_address`), whose ports `read_settings` checked."""
    return [{"name": node.name, "address": node.management_address,
             "port": int(hostvars.get(node.name, {}).get("ansible_port") or 22)} for node in nodes]


def known_hosts(hosts: Sequence[str], host_keys: Mapping[str, Sequence[str]]) -> str:
    """The cluster's known_hosts: every host key of every Spark in `hosts` that reported its keys, under its
    inventory name (the ssh config block names each Spark with `HostKeyAlias`, whatever address reaches it)."""
    lines = ["# Managed by sparkctl: the host keys of the Sparks of this cluster, read from each node's",
             "# /etc/ssh/ssh_host_*_key.pub and named by inventory name (HostKeyAlias in ~/.ssh/config)."]
    for host in hosts:
        lines.extend(f"{host} {' '.join(key.split()[:2])}" for key in host_keys.get(host, ()))
    return "\n".join(lines) + "\n"


def ssh_config_block(hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]], user: str, identity: str,
                     known_hosts_path: str) -> str:
    """The ~/.ssh/config block that lets mpirun and Ray reach every Spark by inventory name or address: the
    cluster key only, the cluster's known_hosts, host keys always checked."""
    lines: list[str] = []
    addresses: list[str] = []
    for host in hosts:
        address = str(hostvars.get(host, {}).get("ansible_host") or host)
        if "ansible_host" in hostvars.get(host, {}):
            addresses.append(address)
        lines += [f"Host {host} {address}", f"    HostName {address}",
                  f"    Port {hostvars.get(host, {}).get('ansible_port') or 22}", f"    HostKeyAlias {host}"]
    lines += [f"Host {' '.join([*hosts, *addresses])}", f"    User {user}", f"    IdentityFile {identity}",
              "    IdentitiesOnly yes", f"    UserKnownHostsFile {known_hosts_path}", "    StrictHostKeyChecking yes",
              "    HashKnownHosts no"]
    return "\n".join(lines)


def refuse_rotation_in_inventory(inventory: Inventory) -> None:
    """sparkctl_ssh_mesh_rotate is for one run (`sparkctl keys rotate` sets it): in the inventory, every
    provision would replace the cluster key."""
    for host in inventory:
        if ROTATE_VAR in host.values:
            raise InputError(
                f"is set for {host.name}, so every run would replace the cluster key",
                file=host.source(ROTATE_VAR) or inventory.path, key=ROTATE_VAR,
                fix="remove it from the inventory and run `sparkctl keys rotate` when the key should change",
            )
