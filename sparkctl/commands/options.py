"""Options several commands share, so they read and check the inventory the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from sparkctl.inventory_source import InventoryChoice, choose_here
from sparkctl.model import TOPOLOGIES

F = TypeVar("F", bound=Callable[..., Any])


_CHOSEN = "sparkctl.inventory"


def _choose_inventory(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    """Resolve the inventory, say on stderr which one is used (first line of every command), keep the choice."""
    chosen = choose_here(value)
    ctx.meta[_CHOSEN] = chosen
    click.echo(chosen.describe(), err=True)
    return chosen.path


def inventory_used() -> InventoryChoice:
    """The inventory the running command chose (for its --json output)."""
    chosen = click.get_current_context().meta[_CHOSEN]
    assert isinstance(chosen, InventoryChoice)
    return chosen


def inventory_option(func: F) -> F:
    return click.option(
        "--inventory", "-i", "inventory", type=click.Path(path_type=Path), default=None,
        callback=_choose_inventory,
        help="Ansible inventory directory (hosts.yml + group_vars/) or hosts file. Default: "
             "SPARKCTL_INVENTORY, then ANSIBLE_INVENTORY, then the inventory setting of the ansible.cfg "
             "in effect, then ./inventory.",
    )(func)


def topology_option(func: F) -> F:
    return click.option(
        "--topology", "-t", type=click.Choice(TOPOLOGIES), default=None,
        help="Override sparkctl_topology from the inventory.",
    )(func)
