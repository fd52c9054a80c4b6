"""The human view of `sparkctl advise`: the recommendation and its reason, then every layout."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from sparkctl.serving.advise import Advice
from sparkctl.views.console import report_console


def show_advice(advice: Advice) -> None:
    out = report_console()
    w = advice.workload
    table = Table("layout", "fits", "output tok/s", "TTFT", "TPOT", "batch", "fabric per step",
                  title=f"{escape(advice.model.name)} on {advice.nodes} Spark(s), {w.name} "
                        f"{w.input_len}/{w.output_len}, concurrency {advice.concurrency}",
                  title_justify="left")
    best = advice.best
    for c in advice.ranked():
        name = f"[bold green]{c.layout.name}[/]" if c is best else c.layout.name
        if not c.fits:
            table.add_row(name, "[red]no[/]", "-", "-", "-", "-", escape(c.why_not))
            continue
        table.add_row(name, "yes", f"{c.tok_s:.1f}", f"{c.ttft_s * 1e3:.0f} ms", f"{c.tpot_s * 1e3:.1f} ms",
                      str(c.batch), f"{c.fabric_s * 1e3:.2f} ms" if c.fabric_s else "-")
    out.print(table)
    out.print(("[bold green]" if best else "[bold red]") + escape(advice.reason()) + "[/]")
    out.print(f"[dim]link: {advice.link.gbytes_per_s:.2f} GB/s, {advice.link.rtt_s * 1e6:.0f} us round trip, "
              f"from {escape(advice.link.source)}. An estimate of what the hardware allows, not a measurement: "
              "sparkctl bench serve measures.[/]")
