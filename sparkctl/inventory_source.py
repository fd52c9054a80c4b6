"""Which inventory a command uses when none is given: the places Ansible users keep one, in their order.

`--inventory`, then SPARKCTL_INVENTORY, then ANSIBLE_INVENTORY, then the `inventory` setting of the
ansible.cfg Ansible itself would read (ANSIBLE_CONFIG, ./ansible.cfg, ~/.ansible.cfg,
/etc/ansible/ansible.cfg: the first that exists), then ./inventory. So `sparkctl provision` and a plain
`ansible-playbook playbooks/site.yml` from the same directory find the same cluster.

ansible.cfg is read with configparser, not through ansible-core: importing Ansible's config manager
costs a quarter of a second on every command, `--help` included.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sparkctl.errors import InputError

DEFAULT_DIRECTORY = "inventory"


@dataclass(frozen=True)
class InventoryChoice:
    """The inventory a command uses and where that choice came from, e.g. `SPARKCTL_INVENTORY`."""

    path: Path
    source: str

    def describe(self) -> str:
        return f"inventory {self.path} (from {self.source})"

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "source": self.source}


def ansible_config(env: Mapping[str, str], cwd: Path, home: Path) -> Path | None:
    """The ansible.cfg Ansible would read, in Ansible's own search order; None when there is none.

    Like Ansible, ./ansible.cfg is skipped in a world-writable directory (anyone could plant one).
    """
    candidates: list[Path] = []
    configured = env.get("ANSIBLE_CONFIG")
    if configured:
        path = (cwd / Path(configured).expanduser())
        candidates.append(path / "ansible.cfg" if path.is_dir() else path)
    try:
        if not cwd.stat().st_mode & 0o002:
            candidates.append(cwd / "ansible.cfg")
    except OSError:
        pass
    candidates += [home / ".ansible.cfg", Path("/etc/ansible/ansible.cfg")]
    return next((path for path in candidates if path.is_file()), None)


def _configured_inventory(config: Path) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    try:
        parser.read(config, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise InputError(f"cannot be read: {exc}", file=config, fix="fix its syntax (INI)") from None
    value = parser.get("defaults", "inventory", fallback="")
    return [part.strip() for part in value.split(",") if part.strip()]


def _one(entries: list[str], where: str, base: Path, key: str, file: Path | None = None) -> Path:
    if len(entries) > 1:
        raise InputError(
            f"lists {len(entries)} inventories ({', '.join(entries)}); sparkctl reads one cluster",
            key=key, file=file, fix="pass the cluster's inventory with --inventory",
        )
    return base / Path(entries[0]).expanduser()


def choose(given: Path | None, env: Mapping[str, str], cwd: Path, home: Path) -> InventoryChoice:
    """The inventory to use; InputError (exit 2) saying how to make one when none is found."""
    if given is not None:
        return InventoryChoice(given, "--inventory")
    for variable in ("SPARKCTL_INVENTORY", "ANSIBLE_INVENTORY"):
        entries = [part.strip() for part in env.get(variable, "").split(",") if part.strip()]
        if entries:
            return InventoryChoice(_one(entries, variable, cwd, variable), variable)
    config = ansible_config(env, cwd, home)
    if config is not None:
        entries = _configured_inventory(config)
        if entries:
            path = _one(entries, str(config), config.parent, "inventory", file=config)
            return InventoryChoice(path, f"ansible.cfg {config}")
    local = cwd / DEFAULT_DIRECTORY
    if local.exists():
        return InventoryChoice(Path(DEFAULT_DIRECTORY), "./inventory")
    looked = ["--inventory", "SPARKCTL_INVENTORY", "ANSIBLE_INVENTORY",
              f"the inventory setting of {config}" if config else "an ansible.cfg", f"{local}"]
    raise InputError(
        f"no inventory found (looked at {', '.join(looked)})", key="--inventory",
        fix="write one for your Sparks with `sparkctl init ADDRESS...` (it creates ./inventory), or pass "
            "--inventory DIR",
    )


def choose_here(given: Path | None) -> InventoryChoice:
    """`choose` for this process: its environment, working directory and home."""
    return choose(given, os.environ, Path.cwd(), Path.home())
