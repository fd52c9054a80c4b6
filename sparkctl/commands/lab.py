"""`sparkctl lab`: a virtual Spark cluster on this machine, to develop and test sparkctl without Sparks.

Progress goes to stderr; stdout carries only what scripts want (`lab up` prints the inventory
directory, `lab status --json` the status), so `INV=$(sparkctl lab up)` works.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sparkctl.errors import InputError
from sparkctl.lab import cabling, faults, lifecycle, preflight
from sparkctl.lab.paths import DEFAULT_NAME, lab_root
from sparkctl.lab.state import FLAVORS, Flavor, locked
from sparkctl.lab.topology import DEFAULT_TOPOLOGY, MAX_NODES, TOPOLOGIES

F = TypeVar("F", bound=Callable[..., Any])


def _name_option(func: F) -> F:
    return click.option(
        "--name", default=DEFAULT_NAME, show_default=True,
        help="Lab name (1-10 lowercase letters/digits); state lives in $SPARKCTL_LAB_ROOT/NAME.",
    )(func)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


@click.group()
def lab() -> None:
    """A virtual Spark cluster on this machine.

    Every node is a network namespace booting systemd (systemd-nspawn of this machine's own OS) with
    sshd, the management port enP7s7 and the four ConnectX-7 netdevs; cables are veth pairs. The
    inventory it writes works with plain ansible-playbook. Needs root.
    """


@lab.command()
@click.option("--nodes", "count", type=click.IntRange(2, MAX_NODES), default=2, show_default=True,
              help="Number of Sparks (spark1..sparkN).")
@click.option("--topology", type=click.Choice(TOPOLOGIES), default=DEFAULT_TOPOLOGY, show_default=True,
              help="Which conventional cabling to plug in.")
@_name_option
@click.option("--speed-mbps", type=int, default=10000, show_default=True,
              help="Link speed verify-link should expect (veth always reports 10000).")
@click.option("--flavor", type=click.Choice(FLAVORS), default="networkd", show_default=True,
              help="networkd: systemd-networkd runs the nodes, as on a server install. dgx-os: as DGX OS ships, "
                   "NetworkManager runs them and owns the management port, systemd-networkd is off.")
def up(count: int, topology: str, name: str, speed_mbps: int, flavor: Flavor) -> None:
    """Create the lab and print the path of its Ansible inventory."""
    err = _err()
    inventory, state = lifecycle.up(
        lab_root(), name, count, topology, speed_mbps,
        say=lambda text: err.print(f"[dim]lab {name}:[/] {escape(text)}"), flavor=flavor,
    )
    for warning in state.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")
    err.print(
        f"lab {name} is up: {len(state.nodes)} {state.flavor} nodes, {state.topology}, "
        f"management {state.mgmt_subnet}"
    )
    err.print(f"make it the default inventory: export SPARKCTL_INVENTORY={escape(shlex.quote(str(inventory)))}",
              soft_wrap=True)
    click.echo(str(inventory))


@lab.command()
@_name_option
def down(name: str) -> None:
    """Remove everything the lab created.

    Works from the recorded state, so also after a crash, and touches nothing it did not record.
    """
    preflight.require_root()
    state = lifecycle.down(lab_root(), name)
    _err().print(f"lab {name} is down" if state else f"no lab named {name}: nothing to do")


@lab.command()
@_name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable status.")
def status(name: str, as_json: bool) -> None:
    """Show nodes, cables and faults.

    Nodes with management address, container and sshd; cables with carrier per half; active faults.
    """
    preflight.require_root()
    paths, state = lifecycle.open_lab(lab_root(), name)
    data = lifecycle.status(paths, state)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    _show(data)


def _show(data: dict[str, Any]) -> None:
    console = Console(highlight=False)
    console.print(
        f"[bold]lab {data['name']}[/] — {data['topology']}, {data['flavor']} nodes, management {data['mgmt_subnet']}\n"
        f"inventory: {data['inventory']}"
    )
    nodes = Table(
        "node", "namespace", "mgmt address", "container", "sshd", title="nodes", title_justify="left"
    )
    for node in data["nodes"]:
        nodes.add_row(
            node["name"], node["namespace"], node["mgmt_address"],
            f"[green]running[/] (pid {node['pid']})" if node["running"] else "[red]stopped[/]",
            "[green]up[/]" if node["sshd"] else "[red]down[/]",
        )
    console.print(nodes)
    cables = Table("cable", "carrier half0", "carrier half1", title="cables", title_justify="left")
    for cable in data["cables"]:
        carrier = ("yes" if up else "[red]no[/]" for up in cable["carrier"])
        cables.add_row(f"{cable['a']} <-> {cable['b']}", *carrier)
    console.print(cables)
    if data["faults"]:
        table = Table("target", "fault", "value", "applied at", title="faults", title_justify="left")
        for fault in data["faults"]:
            table.add_row(fault["target"], fault["kind"], fault["value"], ", ".join(fault["applied"]))
        console.print(table)
    else:
        console.print("faults: none")
    for warning in data["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


@lab.command()
@click.argument("a")
@click.argument("b")
@_name_option
def cable(a: str, b: str, name: str) -> None:
    """Plug a cable between two ports.

    A is a port such as spark1:p0; B another port (spark2:p1) or the lab's `storage` or `switch`.
    The cable joins both halves of the port(s).
    """
    preflight.require_root()
    with locked():
        paths, state = lifecycle.open_lab(lab_root(), name)
        plugged = cabling.cable(paths, state, a, b)
    _err().print(f"cabled {plugged} (both halves)")


@lab.command()
@click.argument("port")
@_name_option
def uncable(port: str, name: str) -> None:
    """Pull the cable out of a port.

    PORT is e.g. spark1:p0; both ends of the cable lose carrier on both halves.
    """
    preflight.require_root()
    with locked():
        paths, state = lifecycle.open_lab(lab_root(), name)
        pulled = cabling.uncable(paths, state, port)
    _err().print(f"uncabled {pulled}")


@lab.command()
@click.argument("target")
@click.option("--rate", help="Rate-limit both directions with tc tbf, e.g. 2gbit.")
@click.option("--loss", help="Drop this share of received packets at random, e.g. 1%.")
@click.option("--down", "link_down", is_flag=True, help="Set the netdev down (its peer loses carrier).")
@click.option("--mtu", type=int, help="Set the netdev's MTU, e.g. 1500.")
@click.option("--clear", "clear_all", is_flag=True, help="Remove every fault on TARGET.")
@_name_option
def fault(
    target: str,
    rate: str | None,
    loss: str | None,
    link_down: bool,
    mtu: int | None,
    clear_all: bool,
    name: str,
) -> None:
    """Inject or clear a fault on a netdev.

    TARGET is NODE:IFACE (e.g. spark1:enp1s0f0np0), or NODE:p0 / NODE:p1 for both halves of a port.
    """
    chosen = {
        "rate": rate, "loss": loss, "down": "" if link_down else None,
        "mtu": None if mtu is None else str(mtu), "clear": "" if clear_all else None,
    }
    given = {kind: value for kind, value in chosen.items() if value is not None}
    if len(given) != 1:
        raise InputError(
            "give exactly one of --rate, --loss, --down, --mtu, --clear", key="sparkctl lab fault",
            fix="e.g. sparkctl lab fault spark1:enp1s0f0np0 --rate 2gbit",
        )
    ((kind, value),) = given.items()
    wanted = None if kind == "clear" else faults.Request.checked(kind, value)
    preflight.require_root()
    with locked():
        paths, state = lifecycle.open_lab(lab_root(), name)
        if wanted is None:
            cleared = faults.remove(paths, state, target)
            _err().print(f"cleared {len(cleared)} fault(s) on {target}")
            return
        added = faults.inject(paths, state, target, wanted)
    for item in added:
        _err().print(f"fault on {item.target}: {item.kind} {item.value}".rstrip())
