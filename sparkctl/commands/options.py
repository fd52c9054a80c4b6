"""Options several commands share, so they read and check the inventory the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from sparkctl.model import TOPOLOGIES

F = TypeVar("F", bound=Callable[..., Any])


def inventory_option(func: F) -> F:
    return click.option(
        "--inventory", "-i", "inventory", type=click.Path(path_type=Path), envvar="SPARKCTL_INVENTORY",
        required=True, help="Ansible inventory directory (hosts.yml + group_vars/) or hosts file.",
    )(func)


def topology_option(func: F) -> F:
    return click.option(
        "--topology", "-t", type=click.Choice(TOPOLOGIES), default=None,
        help="Override sparkctl_topology from the inventory.",
    )(func)
