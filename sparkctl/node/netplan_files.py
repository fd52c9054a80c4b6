"""A node's netplan directory as netplan itself reads it: whose files they are and what they configure.

sparkctl owns the files whose name contains `sparkctl` and never edits any other. What a set of files
configures is asked of netplan, not parsed here: the files are staged alone in a scratch root and
`netplan generate --root-dir` renders them, so every netplan feature (merging, `match:` with
`set-name:`, either renderer) counts exactly as netplan applies it, and a node needs no YAML library.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .networkd import Runner, parse_network

NETPLAN_DIR = Path("/etc/netplan")


class NetplanRejected(Exception):
    """`netplan generate` refused the staged files; the message is netplan's, with scratch paths removed."""


@dataclass(frozen=True)
class Configured:
    """The devices and bonds a set of netplan files configures, whichever renderer renders them."""

    devices: frozenset[str]
    bonds: frozenset[str]

    @property
    def all(self) -> frozenset[str]:
        return self.devices | self.bonds


def is_ours(path: str) -> bool:
    return "sparkctl" in Path(path).name


def read(directory: Path = NETPLAN_DIR) -> dict[str, bytes]:
    """path -> content of every *.yaml file netplan reads from `directory`."""
    if not directory.is_dir():
        return {}
    return {str(p): p.read_bytes() for p in sorted(directory.glob("*.yaml")) if p.is_file()}


def _generate(run: Runner, files: Mapping[str, bytes], scratch: Path) -> None:
    for path, content in files.items():
        staged = scratch / path.lstrip("/")
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.touch(mode=0o600)
        staged.write_bytes(content)
    rc, out, err = run(["netplan", "generate", "--root-dir", str(scratch)])
    if rc != 0:
        raise NetplanRejected((err or out).replace(str(scratch), "").strip())


def configured(run: Runner, files: Mapping[str, bytes]) -> Configured:
    """What `files` (path -> content) configure, read from what netplan renders for them alone."""
    if not files:
        return Configured(frozenset(), frozenset())
    devices: set[str] = set()
    bonds: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="sparkctl-netplan-") as scratch:
        root = Path(scratch)
        _generate(run, files, root)
        for unit in sorted((root / "run/systemd/network").glob("*")):
            text = unit.read_text(encoding="utf-8", errors="replace")
            if unit.suffix == ".network":
                devices.update(parse_network(unit.name, text).names)
            elif unit.suffix == ".netdev" and "Kind=bond" in text:
                bonds.update(line.split("=", 1)[1].strip() for line in text.splitlines()
                             if line.strip().startswith("Name="))
        for keyfile in sorted((root / "run/NetworkManager/system-connections").glob("*.nmconnection")):
            for line in keyfile.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip().startswith("interface-name="):
                    devices.add(line.split("=", 1)[1].strip())
    return Configured(frozenset(devices - bonds), frozenset(bonds))


def validate(run: Runner, files: Mapping[str, bytes]) -> None:
    """Raise NetplanRejected unless netplan accepts `files` together (nothing live is touched)."""
    with tempfile.TemporaryDirectory(prefix="sparkctl-netplan-") as scratch:
        _generate(run, files, Path(scratch))
