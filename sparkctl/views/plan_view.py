"""The human view of a plan: the cabling drawn, every link's halves and subnets, then each node's files."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from sparkctl.model import ClusterPlan
from sparkctl.render import node_files


def _drawing(plan: ClusterPlan, data: dict[str, Any]) -> Text:
    text = Text()
    if plan.topology == "switch":
        ports = sorted({link.a.port for link in plan.links})
        text.append("            ┌──────── switch ────────┐\n", style="bold")
        for name in plan.nodes:
            text.append(f"  {name:>10} ", style="bold cyan")
            text.append(" ".join(f"{p}═══╡" for p in ports) + "\n")
        return text
    for cable in plan.cables:
        text.append(f"  {cable.a.node:>10} ", style="bold cyan")
        text.append(f"{cable.a.port} ══════════ {cable.b.port} ")
        text.append(f"{cable.b.node}\n", style="bold cyan")
    storage = [link for link in plan.links if link.kind == "storage" and link.half == 0]
    for link in storage:
        text.append(f"  {link.a.node:>10} ", style="bold cyan")
        text.append(f"{link.a.port} ══════════ ")
        text.append("storage\n", style="bold magenta")
    return text


def _words(*parts: object) -> str:
    """One end of a link as words, leaving out what it has not got (a storage end has no netdev)."""
    return " ".join(str(part) for part in parts if part)


def _links_table(plan: ClusterPlan) -> Table:
    table = Table(title="Links (one subnet per PCIe half)", expand=False)
    for column in ("half", "A", "B", "subnet"):
        table.add_column(column, no_wrap=column in ("half", "subnet"))
    cable = None
    for link in plan.links:
        if link.cable != cable:
            cable = link.cable
            table.add_row("", f"[bold]{escape(cable)}[/]", "", "")
        a = _words(link.a.node, link.a.interface, link.a.address)
        b = _words(link.b.node, link.b.interface, link.b.address, *link.targets)
        table.add_row(str(link.half), escape(a), escape(b), str(link.subnet))
    return table


def show_plan(plan: ClusterPlan, data: dict[str, Any], console: Console | None = None) -> None:
    """Print the plan for a person: drawing, links, warnings, then each node's netplan and environment."""
    console = console or Console()
    console.print(
        f"[bold]Topology[/] {escape(plan.topology)} · MTU {plan.mtu} · pool {plan.fabric_pool} · "
        f"cabling {plan.cabling_source} · {len(plan.nodes)} nodes"
    )
    console.print(_drawing(plan, data))
    console.print(_links_table(plan))
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for name, node in plan.nodes.items():
        # A rule over each node's files rather than a panel around them: the files print as they are
        # (no wrapping to fit a box), which keeps a 64-node plan under a second.
        files = node_files(plan, name, data)
        title = escape(f"{name} · management {node.management_address} (not touched)")
        console.print(Rule(title, align="left"))
        console.print(Text(f"{files['netplan'].path} (mode {files['netplan'].mode})", style="dim"), soft_wrap=True)
        console.print(Text(files["netplan"].content), soft_wrap=True)
        console.print(Text(files["env"].path, style="dim"), soft_wrap=True)
        console.print(Text("\n".join(f"{k}={v}" for k, v in sorted(node.env.items()))), soft_wrap=True)
