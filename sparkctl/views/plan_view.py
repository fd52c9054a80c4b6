"""The human view of a plan: the cabling drawn, every link's halves and subnets, then each node's files."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
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


def _links_text(plan: ClusterPlan) -> Text:
    """Every link's halves and subnets in aligned columns, each cable's links under its name.

    Plain aligned text, not a rich Table: a table measures and wraps every cell, half a second for
    the 256 links of a 64-node switch cluster.
    """
    rows: list[tuple[str, str, str, str] | str] = []
    cable = None
    for link in plan.links:
        if link.cable != cable:
            cable = link.cable
            rows.append(cable)
        rows.append((str(link.half), _words(link.a.node, link.a.interface, link.a.address),
                     _words(link.b.node, link.b.interface, link.b.address, *link.targets), str(link.subnet)))
    cells = [("half", "A", "B", "subnet"), *(row for row in rows if isinstance(row, tuple))]
    widths = [max(len(row[column]) for row in cells) for column in range(3)]
    text = Text("Links (one subnet per PCIe half)\n", style="bold")

    def line(row: tuple[str, str, str, str], style: str = "") -> None:
        text.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + f"  {row[3]}\n",
                    style=style)

    line(cells[0], "bold")
    for row in rows:
        if isinstance(row, str):
            text.append(f"  {'':{widths[0]}}  {row}\n", style="bold")
        else:
            line(row)
    return text


def show_plan(plan: ClusterPlan, data: dict[str, Any], console: Console | None = None) -> None:
    """Print the plan for a person: drawing, links, warnings, then each node's netplan and environment."""
    console = console or Console()
    console.print(
        f"[bold]Topology[/] {escape(plan.topology)} · MTU {plan.mtu} · pool {plan.fabric_pool} · "
        f"cabling {plan.cabling_source} · {len(plan.nodes)} nodes"
    )
    console.print(_drawing(plan, data))
    console.print(_links_text(plan), soft_wrap=True)
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
