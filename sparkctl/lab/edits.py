"""Edits an owner makes to a lab's inventory when the cluster changes: a storage cage moved, a node not yet
in the cluster. The recabling lab tests and `bench/recabling_stress.py` make the same edits through these
functions, so both exercise one change the way a user makes it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import yaml

SPARKS_VARS = Path("group_vars") / "sparks.yml"
HOSTS = Path("hosts.yml")


def set_storage_port(inventory: Path, port: str) -> None:
    """Set `sparkctl_storage.port` in the inventory's group_vars/sparks.yml, as after moving the storage cables."""
    path = inventory / SPARKS_VARS
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    values["sparkctl_storage"]["port"] = port
    path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")


def copy_without(inventory: Path, destination: Path, absent: Iterable[str]) -> Path:
    """A copy of the lab inventory at `destination` in which the Sparks `absent` are not listed (nodes that
    are booted but not yet part of the cluster); returns `destination`. The copy keeps the lab's keys and
    known_hosts, which group_vars names by absolute path."""
    shutil.copytree(inventory, destination, dirs_exist_ok=True)
    hosts = yaml.safe_load((destination / HOSTS).read_text(encoding="utf-8"))
    sparks = hosts["all"]["children"]["sparks"]["hosts"]
    for name in absent:
        del sparks[name]
    (destination / HOSTS).write_text(yaml.safe_dump(hosts, sort_keys=False), encoding="utf-8")
    return destination
