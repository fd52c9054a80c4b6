"""Options several commands share, so they read and check the inventory the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sparkctl.become import BecomePassword
from sparkctl.inventory_source import InventoryChoice, choose_here
from sparkctl.model import TOPOLOGIES
from sparkctl.vault import VaultPasswords

if TYPE_CHECKING:  # imported when a command runs: `sparkctl --help` stays fast
    from sparkctl.inventory import Inventory
    from sparkctl.ssh import SSHTarget

F = TypeVar("F", bound=Callable[..., Any])


_CHOSEN = "sparkctl.inventory"
_VAULT = "sparkctl.vault"
_BECOME = "sparkctl.become"


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


def _vault(ctx: click.Context) -> VaultPasswords:
    found = ctx.meta.setdefault(_VAULT, VaultPasswords())
    assert isinstance(found, VaultPasswords)
    return found


def _password_files(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> None:
    _vault(ctx).files = value


def _ask(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    _vault(ctx).ask = value


def vault_used() -> VaultPasswords:
    """The vault passwords the running command was given, for reading the inventory and for the playbook run."""
    return _vault(click.get_current_context())


def _ask_become(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    ctx.meta[_BECOME] = BecomePassword(ask=value)


def become_used() -> BecomePassword:
    """The sudo password the running command was asked to prompt for (none without --ask-become-pass)."""
    found = click.get_current_context().meta.setdefault(_BECOME, BecomePassword())
    assert isinstance(found, BecomePassword)
    return found


def node_targets(hosts: Inventory, *, trust_on_first_use: bool = False) -> dict[str, SSHTarget]:
    """How sparkctl's own commands reach every host: as Ansible does, with sudo's password from the inventory
    or typed at --ask-become-pass."""
    from sparkctl.ssh import SSHTarget

    asked = become_used().typed()
    return {host.name: SSHTarget.from_hostvars(host.name, host.values, trust_on_first_use=trust_on_first_use,
                                               become_password=asked) for host in hosts}


def become_option(func: F) -> F:
    """--ask-become-pass (-K), for the commands that act on the nodes."""
    return click.option(
        "--ask-become-pass", "-K", is_flag=True, expose_value=False, callback=_ask_become,
        help="Ask for the sudo password of the inventory's ansible_user, as ansible-playbook -K (hosts whose "
             "inventory sets ansible_become_password keep theirs).",
    )(func)


def inventory_option(func: F) -> F:
    """--inventory, and the vault options ansible-playbook takes to read it (passed on to the playbook run)."""
    func = click.option(
        "--ask-vault-pass", is_flag=True, expose_value=False, callback=_ask,
        help="Ask for the vault password (as ansible-playbook --ask-vault-pass).",
    )(func)
    func = click.option(
        "--vault-password-file", type=click.Path(path_type=Path), multiple=True, expose_value=False,
        callback=_password_files, metavar="FILE",
        help="File (or script) giving the vault password of the inventory; repeatable. Default: "
             "ANSIBLE_VAULT_PASSWORD_FILE, then the vault_password_file setting of the ansible.cfg in effect.",
    )(func)
    return click.option(
        "--inventory", "-i", "inventory", type=click.Path(path_type=Path), default=None,
        callback=_choose_inventory,
        help="Ansible inventory directory (hosts + group_vars/, YAML or INI) or hosts file. Default: "
             "SPARKCTL_INVENTORY, then ANSIBLE_INVENTORY, then the inventory setting of the ansible.cfg "
             "in effect, then ./inventory.",
    )(func)


def topology_option(func: F) -> F:
    return click.option(
        "--topology", "-t", type=click.Choice(TOPOLOGIES), default=None,
        help="Override sparkctl_topology from the inventory.",
    )(func)
