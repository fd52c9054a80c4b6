"""The one road from an inventory on disk to a checked plan, shared by every command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sparkctl.inventory import Inventory, load_inventory
from sparkctl.model import Cable, ClusterPlan
from sparkctl.planner import build_plan
from sparkctl.settings import ClusterSettings, read_settings
from sparkctl.vault import VaultPasswords


@dataclass(frozen=True)
class Cluster:
    inventory: Inventory
    settings: ClusterSettings
    plan: ClusterPlan


def load_cluster(path: Path | str, topology: str | None = None, discovered: Sequence[Cable] | None = None,
                 vault: VaultPasswords | None = None) -> Cluster:
    return plan_cluster(load_inventory(path, vault), topology, discovered)


def plan_cluster(inventory: Inventory, topology: str | None = None,
                 discovered: Sequence[Cable] | None = None) -> Cluster:
    """The plan of an inventory already read (reading it through Ansible once per command is enough)."""
    settings = read_settings(inventory, topology)
    return Cluster(inventory, settings, build_plan(settings, discovered))
