"""Where a lab keeps its state on disk and what its kernel objects are called.

Every name the lab gives a namespace or a host interface is derived here from the lab name, so
`down` can find them from state alone and two labs never clash. Linux caps interface names at 15
characters, hence the short lab names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sparkctl.errors import InputError

DEFAULT_ROOT = Path("/var/lib/sparkctl/lab")
ROOT_ENV = "SPARKCTL_LAB_ROOT"
DEFAULT_NAME = "sparklab"
NAMESPACE_PREFIX = "sparklab"
"""Every namespace a lab creates is `sparklab-<lab>-<what>`."""

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,9}$")
"""At most 10 characters, so `<lab>-br` and `<lab>-m8` stay within the 15-character interface limit."""

LOCK_FILE = Path("/run/sparkctl/lab.lock")
"""One lock for all labs on the machine: they share the host's address space and interface names.
Its directory is root's alone (0700), so no other user can plant a file or symlink there."""


def lab_root() -> Path:
    """The directory holding every lab's state (`$SPARKCTL_LAB_ROOT`, so tests can use a temp dir)."""
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def check_name(name: str) -> str:
    """A lab name, or InputError saying which names work."""
    if not NAME_PATTERN.match(name):
        raise InputError(
            f"lab name {name!r} is not usable", key="--name",
            fix="use 1-10 lowercase letters and digits, starting with a letter (it prefixes interface names)",
        )
    return name


@dataclass(frozen=True)
class LabPaths:
    """The files of one lab under its state directory."""

    root: Path
    name: str

    @property
    def dir(self) -> Path:
        return self.root / self.name

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def client_key(self) -> Path:
        return self.dir / "keys" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory"

    def node_dir(self, node: str) -> Path:
        return self.dir / "nodes" / node

    def node_etc(self, node: str) -> Path:
        """The node's private layer over the host's /etc: whatever the node writes to /etc lands here."""
        return self.node_dir(node) / "etc"

    def node_root_home(self, node: str) -> Path:
        return self.node_dir(node) / "root"

    def console_log(self, node: str) -> Path:
        return self.node_dir(node) / "console.log"


def namespace(lab: str, what: str) -> str:
    """The network namespace of one lab member (a node, `spare`, `storage` or `switch`)."""
    return f"{NAMESPACE_PREFIX}-{lab}-{what}"


def bridge_name(lab: str) -> str:
    """The management bridge in the root namespace; the host's own address on it is .1."""
    return f"{lab}-br"


def mgmt_host_interface(lab: str, index: int) -> str:
    """The root-namespace end of node `index`'s management cable."""
    return f"{lab}-m{index}"
