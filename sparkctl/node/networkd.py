"""Applying netplan to the fabric through systemd-networkd without racing networkd itself.

Why this exists (measured on systemd 252, Debian 12 / DGX OS):

- `netplan generate` rewrites every file under /run/systemd/network, and networkd decides what
  `networkctl reload` reconfigures by the files' inode and mtime, not their content: after a plain
  generate, reload reconfigures *every* link it manages, changed or not.
- reload returns before it has done anything: each link is reconfigured asynchronously, and for tens of
  milliseconds a link still reports its old "configured" state with its old addresses.
- `networkctl reconfigure` on a link networkd is still configuring (after a reload, or after the link
  gained carrier when a cable was moved) overlaps two configurations of one link. networkd 252 then
  fails the link ("Numerical result out of range") and can even abort on a corrupted address.
- reload never touches a link in state "failed"; a link without carrier stays "configuring" (its
  requests wait for carrier and nothing is in flight).

So an apply here: waits until no wanted link is being configured; generates; puts back every file
whose content did not change (its old inode, so reload leaves that link alone); reloads only if
something changed; waits until each link reload reconfigures shows its new file in effect; reconfigures
only the wanted links that reload did not and whose live state still differs from their file (or that
are failed or unmanaged); waits again; and reports. Every wait is bounded and ends in an error naming
the links and their states. The decisions are pure functions over `networkctl list --json=short`
output and file contents, so they are tested with recordings from real nodes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NETWORK_DIR = Path("/run/systemd/network")
"""Where netplan generate writes networkd's files (and nothing else writes)."""

BUSY_ADMIN_STATES = frozenset({"pending", "initialized", "configuring"})
"""networkd setup states in which a link's configuration is (or is about to be) in flight."""

TRANSIT_CONFIG_STATES = frozenset({"requesting", "configuring", "removing"})
"""Per-address states of networkd: queued, sent to the kernel and not yet answered, being removed."""

NO_CARRIER_STATES = frozenset({"off", "no-carrier"})

Runner = Callable[[Sequence[str]], tuple[int, str, str]]
"""Runs argv, returns (rc, stdout, stderr): `steps.subprocess_runner` on a node, a fake in tests."""


class NetworkdError(Exception):
    """The apply could not bring the links to a settled, configured state; the message says which and why."""


def checked(run: Runner, argv: list[str], error: type[Exception] = NetworkdError) -> str:
    """Run `argv` and return its output; raise `error` naming the command and what it said if it failed."""
    rc, out, err = run(argv)
    if rc != 0:
        raise error(f"`{' '.join(argv)}` failed (rc {rc}): {(err or out).strip()}")
    return out


# --- what networkd reports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """One link as `networkctl list --json=short` describes it."""

    name: str
    admin: str
    """AdministrativeState (the SETUP column): pending, initialized, configuring, configured, unmanaged,
    failed or linger."""
    carrier: str
    mtu: int
    addresses: frozenset[str]
    """Global IPv4 addresses on the link as "a.b.c.d/len", whoever configured them."""
    static_addresses: frozenset[str]
    """The IPv4 addresses networkd itself configured from the link's .network file and has confirmed."""
    in_transit: bool
    """Some address or route networkd manages is queued, awaiting the kernel's answer or being removed."""
    network_file: str | None
    up: bool = True
    """The link is administratively up (IFF_UP). Something else (NetworkManager letting go of it, a person)
    may have set it down; networkd brings a link it manages up only when it configures it."""

    @property
    def has_carrier(self) -> bool:
        return self.carrier not in NO_CARRIER_STATES

    @property
    def busy(self) -> bool:
        """networkd is configuring this link right now, so a reconfigure would overlap it.

        A link without carrier that is "configuring" has its requests parked until carrier comes back:
        nothing is in flight, and waiting for it would only wait for a cable.
        """
        if self.admin in ("pending", "initialized"):
            return True
        if not self.has_carrier:
            return False
        return self.admin == "configuring" or self.in_transit

    def describe(self) -> str:
        carrier = "" if self.has_carrier else ", no carrier"
        return f"{self.name} ({self.admin}{carrier})"


def _ipv4(raw: object) -> str | None:
    if not isinstance(raw, list) or len(raw) != 4:
        return None
    return str(ipaddress.IPv4Address(bytes(int(b) for b in raw)))


def parse_links(text: str) -> dict[str, Link]:
    """The links of `networkctl list --json=short` (systemd 252's field names), by name."""
    data = json.loads(text)
    links: dict[str, Link] = {}
    for item in data.get("Interfaces") or []:
        addresses: set[str] = set()
        static: set[str] = set()
        in_transit = False
        for entry in list(item.get("Addresses") or []) + list(item.get("Routes") or []):
            source = entry.get("ConfigSource", "")
            states = set(str(entry.get("ConfigState", "")).split(","))
            if source != "foreign" and states & TRANSIT_CONFIG_STATES:
                in_transit = True
        for entry in item.get("Addresses") or []:
            if entry.get("Family") != 2 or entry.get("Scope", 0) != 0:
                continue
            address = _ipv4(entry.get("Address"))
            if address is None:
                continue
            text_address = f"{address}/{entry.get('PrefixLength')}"
            states = set(str(entry.get("ConfigState", "")).split(","))
            if "removing" not in states:
                addresses.add(text_address)
            if entry.get("ConfigSource") == "static" and states == {"configured"}:
                static.add(text_address)
        links[item["Name"]] = Link(
            name=item["Name"],
            admin=str(item.get("AdministrativeState", "")),
            carrier=str(item.get("CarrierState", "")),
            mtu=int(item.get("MTU", 0)),
            addresses=frozenset(addresses),
            static_addresses=frozenset(static),
            in_transit=in_transit,
            network_file=item.get("NetworkFile"),
            up="up" in str(item.get("FlagsString", "up")).split(","),
        )
    return links


# --- what the .network files ask for --------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkFile:
    """What a .network file netplan wrote asks of the links it matches (the parts an apply can check)."""

    path: str
    names: tuple[str, ...]
    mtu: int | None
    addresses: frozenset[str]

    def matches(self, link: str) -> bool:
        return any(fnmatch.fnmatchcase(link, pattern) for pattern in self.names)


def parse_network(path: str, text: str) -> NetworkFile:
    """[Match] Name=, [Link] MTUBytes= and every Address= (in [Network] or [Address]) of a .network file."""
    section = ""
    names: list[str] = []
    mtu: int | None = None
    addresses: set[str] = set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if section == "Match" and key == "Name":
            names.extend(value.split())
        elif section == "Link" and key == "MTUBytes" and value.isdigit():
            mtu = int(value)
        elif section in ("Network", "Address") and key == "Address" and value:
            interface = ipaddress.ip_interface(value)
            if interface.version == 4:
                addresses.add(str(interface))
    return NetworkFile(path=path, names=tuple(names), mtu=mtu, addresses=frozenset(addresses))


def network_files(files: Mapping[str, bytes]) -> list[NetworkFile]:
    """The .network files among `files` (name -> content), in networkd's order (by file name)."""
    return [
        parse_network(name, content.decode("utf-8", "replace"))
        for name, content in sorted(files.items())
        if name.endswith(".network")
    ]


def file_for(link: str, files: Iterable[NetworkFile]) -> NetworkFile | None:
    """The file networkd gives `link`: the first, by name, whose [Match] Name= matches it."""
    for candidate in files:
        if candidate.matches(link):
            return candidate
    return None


# --- decisions ------------------------------------------------------------------------------------------


def changed_files(before: Mapping[str, bytes], after: Mapping[str, bytes]) -> set[str]:
    """File names added, removed or rewritten with other content."""
    return {name for name in set(before) | set(after) if before.get(name) != after.get(name)}


def reloaded_links(
    links: Mapping[str, Link], before: Mapping[str, bytes], after: Mapping[str, bytes]
) -> set[str]:
    """The links `networkctl reload` reconfigures by itself once only changed files were rewritten:
    every link whose .network file (before or after) changed, except links in state "failed", which
    reload leaves alone. Links networkd does not know yet (no netdev) are not among them."""
    changed = changed_files(before, after)
    old, new = network_files(before), network_files(after)
    out = set()
    for name, link in links.items():
        if link.admin in ("failed", "linger"):
            continue
        was, will = file_for(name, old), file_for(name, new)
        if (was is not None and was.path in changed) or (will is not None and will.path in changed):
            out.add(name)
    return out


def shows_file(link: Link, wanted: NetworkFile | None) -> bool:
    """The link's live state is what its file asks for: networkd is done with it and the addresses it
    configured and the MTU are the file's, so a reconfigure that has not started yet (the link still
    shows its old file's addresses) cannot pass for one that finished. A link without a file must be
    unmanaged, its old addresses removed."""
    if wanted is None:
        return link.admin in ("unmanaged", "linger") and not link.busy
    if link.busy or link.admin not in ("configured", "configuring"):
        return False
    # Addresses networkd confirmed from the file; without carrier they stay queued ("requesting").
    # Addresses someone else added are left to needs_reconfigure and the role's drift check.
    confirmed = link.static_addresses if link.has_carrier else link.addresses & wanted.addresses
    if confirmed != wanted.addresses:
        return False
    return wanted.mtu is None or link.mtu == wanted.mtu


def needs_reconfigure(link: Link, wanted: NetworkFile | None) -> str | None:
    """Why a link reload did not reconfigure still needs `networkctl reconfigure` (None: it does not)."""
    if wanted is None:
        return None
    if link.admin == "failed":
        return "networkd failed it"
    if link.admin == "unmanaged":
        return "networkd does not manage it yet"
    if link.admin == "linger":
        return None
    if not link.up:
        return "it is down"
    if not link.has_carrier:
        return None  # parked until carrier; reconfiguring would change nothing
    missing = sorted(wanted.addresses - link.addresses)
    extra = sorted(link.addresses - wanted.addresses)
    reasons = [f"lacks {a}" for a in missing] + [f"has unplanned {a}" for a in extra]
    if wanted.mtu is not None and link.mtu != wanted.mtu:
        reasons.append(f"MTU {link.mtu}, file says {wanted.mtu}")
    return ", ".join(reasons) or None


def unsettled(links: Mapping[str, Link], names: Iterable[str],
              files: Iterable[NetworkFile]) -> dict[str, str]:
    """Of `names`, the links whose live state does not yet show their file, with a word on each."""
    files = list(files)
    out = {}
    for name in sorted(set(names)):
        link = links.get(name)
        if link is None:
            out[name] = f"{name} (no such link)"
        elif not shows_file(link, file_for(name, files)):
            out[name] = link.describe()
    return out


def busy(links: Mapping[str, Link], names: Iterable[str]) -> dict[str, str]:
    """Of `names`, the links networkd is configuring right now."""
    return {name: links[name].describe() for name in sorted(set(names)) if name in links and links[name].busy}


# --- the apply ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What an apply did (or, in check mode, would do)."""

    changed: bool = False
    changed_files: list[str] = field(default_factory=list)
    reloaded: bool = False
    reloaded_links: list[str] = field(default_factory=list)
    reconfigured: dict[str, str] = field(default_factory=dict)
    """Link -> why it was reconfigured explicitly."""
    waited_seconds: float = 0.0
    no_carrier: list[str] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)


def read_dir(directory: Path) -> dict[str, bytes]:
    """name -> content of the regular files of a directory (empty if it does not exist)."""
    if not directory.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file() and not p.is_symlink()}


def digest(files: Mapping[str, bytes]) -> dict[str, str]:
    """Content hashes, for the result (what changed, without the files' text)."""
    return {name: hashlib.sha256(content).hexdigest()[:16] for name, content in files.items()}


class Applier:
    """One apply on one node. `run` runs commands; `clock`/`sleep` are time.monotonic/time.sleep but for tests."""

    def __init__(self, run: Runner, links: list[str], settle_timeout: float, *,
                 directory: Path = NETWORK_DIR, netplan_root: Path = Path("/"), poll_interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.run = run
        self.wanted = list(dict.fromkeys(links))
        self.settle_timeout = settle_timeout
        self.directory = directory
        self.netplan_root = netplan_root
        self.poll_interval = poll_interval
        self.clock = clock
        self.sleep = sleep
        self.outcome = Outcome()

    def _command(self, argv: list[str]) -> str:
        return checked(self.run, argv)

    def links(self) -> dict[str, Link]:
        return parse_links(self._command(["networkctl", "list", "--json=short"]))

    def require(self, links: Mapping[str, Link]) -> None:
        missing = [name for name in self.wanted if name not in links]
        if missing:
            raise NetworkdError(f"systemd-networkd does not know {', '.join(missing)}")

    def wait(self, what: str, pending: Callable[[dict[str, Link]], dict[str, str]]) -> dict[str, Link]:
        """Poll networkd until `pending` finds nothing, or fail after the settle timeout naming what is left."""
        start = self.clock()
        while True:
            links = self.links()
            left = pending(links)
            if not left:
                self.outcome.waited_seconds += self.clock() - start
                self.require(links)
                return links
            if self.clock() - start >= self.settle_timeout:
                raise NetworkdError(
                    f"systemd-networkd did not settle within {self.settle_timeout:g} s {what}: "
                    + ", ".join(left.values())
                )
            self.sleep(self.poll_interval)

    def stage_generate(self) -> dict[str, bytes]:
        """What `netplan generate` would write to the network directory, generated in a scratch root
        from copies of the netplan configuration directories (check mode: nothing live is touched)."""
        with tempfile.TemporaryDirectory(prefix="sparkctl-networkd-") as scratch:
            for source in ("etc/netplan", "lib/netplan", "run/netplan", "usr/lib/netplan"):
                if (self.netplan_root / source).is_dir():
                    shutil.copytree(self.netplan_root / source, Path(scratch, source), symlinks=True)
            self._command(["netplan", "generate", "--root-dir", scratch])
            return read_dir(Path(scratch) / self.directory.relative_to("/"))

    def generate(self, before: dict[str, bytes]) -> dict[str, bytes]:
        """`netplan generate`, then every file whose content it did not change is put back as the very
        file it was (hard link kept aside on the same file system), so reload leaves its link alone."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".sparkctl-keep-", dir=self.directory.parent) as keep:
            for name in before:
                os.link(self.directory / name, Path(keep, name))
            self._command(["netplan", "generate"])
            after = read_dir(self.directory)
            for name, content in after.items():
                if before.get(name) == content:
                    os.replace(Path(keep, name), self.directory / name)
        return after

    def apply(self, check_mode: bool = False) -> Outcome:
        out = self.outcome
        links = self.links()
        self.require(links)
        ours = set(self.wanted) | {
            name for name, link in links.items()
            if link.network_file and Path(link.network_file).parent == self.directory
        }
        if not check_mode:
            # A link whose carrier just came back (a moved cable) is being configured: let networkd finish.
            links = self.wait("before the apply", lambda ls: busy(ls, ours))
        before = read_dir(self.directory)
        after = self.stage_generate() if check_mode else self.generate(before)
        files = network_files(after)
        out.changed_files = sorted(changed_files(before, after))
        reloaded = reloaded_links(links, before, after) if out.changed_files else set()
        out.reloaded_links = sorted(reloaded)
        if check_mode:
            out.reloaded = bool(out.changed_files)
            for name in self.wanted:
                if name not in reloaded:
                    reason = needs_reconfigure(links[name], file_for(name, files))
                    if reason:
                        out.reconfigured[name] = reason
            out.changed = out.reloaded or bool(out.reconfigured)
            out.states = {name: links[name].admin for name in self.wanted}
            return out
        if out.changed_files:
            self._command(["networkctl", "reload"])
            out.reloaded = True
            # reload returns before it acts: wait until every link it reconfigures shows its new file.
            links = self.wait("after networkctl reload",
                              lambda ls: {**unsettled(ls, reloaded, files), **busy(ls, ours)})
        for name in self.wanted:
            if name in reloaded and links[name].admin != "failed":
                continue
            reason = needs_reconfigure(links[name], file_for(name, files))
            if reason:
                out.reconfigured[name] = reason
        if out.reconfigured:
            self._command(["networkctl", "reconfigure", *out.reconfigured])
            links = self.wait("after networkctl reconfigure",
                              lambda ls: unsettled(ls, out.reconfigured, files))
        failed = [links[n].describe() for n in self.wanted if links[n].admin in ("failed", "unmanaged", "linger")]
        if failed:
            raise NetworkdError("systemd-networkd left " + ", ".join(failed) + " after the apply")
        out.no_carrier = [n for n in self.wanted if not links[n].has_carrier]
        out.states = {name: links[name].admin for name in self.wanted}
        out.changed = out.reloaded or bool(out.reconfigured)
        return out
