"""`sparkctl advise`: the layout of a model on N Sparks that should serve a workload fastest, and why."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sparkctl.errors import InputError
from sparkctl.serving.workloads import WORKLOADS


@click.command()
@click.option("--model", "-m", "model_name", required=True, metavar="M",
              help="A built-in model (e.g. gpt-oss-120b), a config.json path, or a Hugging Face id in the local cache.")
@click.option("--nodes", "-n", type=int, default=2, show_default=True, help="Sparks to spread it over.")
@click.option("--workload", "-w", type=click.Choice(list(WORKLOADS)), default="equal", show_default=True,
              help="equal 1024/1024, prefill-heavy 8192/1024, decode-heavy 1024/8192 (input/output tokens).")
@click.option("--input-len", type=int, default=None, help="Override the workload's input tokens.")
@click.option("--output-len", type=int, default=None, help="Override the workload's output tokens.")
@click.option("--concurrency", "-c", type=int, default=1, show_default=True, help="Requests in flight at once.")
@click.option("--inventory", "-i", type=click.Path(path_type=Path), default=None,
              help="Use the link figures the last verify-link saved for this inventory (default: the one "
                   "other commands would pick, if any).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: recommendation, reason, candidates.")
def advise(model_name: str, nodes: int, workload: str, input_len: int | None, output_len: int | None,
           concurrency: int, inventory: Path | None, as_json: bool) -> None:
    """Estimate single, TP=N, PP=N and N replicas from bytes, FLOPs and the link, before you deploy."""
    from sparkctl.inventory_source import choose_here
    from sparkctl.serving.advise import advise as estimate_all
    from sparkctl.serving.models import find_model
    from sparkctl.serving.workloads import pick
    from sparkctl.verify import measured
    from sparkctl.views.advise_view import show_advice

    if not 1 <= nodes <= 64:
        raise InputError(f"{nodes} is out of range", key="--nodes", fix="use 1 to 64 Sparks")
    if not 1 <= concurrency <= 4096:
        raise InputError(f"{concurrency} is out of range", key="--concurrency", fix="use 1 to 4096 requests")
    model = find_model(model_name)
    (chosen,) = pick(workload, input_len, output_len)
    if inventory is None:
        try:
            inventory = choose_here(None).path
        except InputError:
            inventory = None
    link = measured.load(inventory)
    advice = estimate_all(model, nodes, chosen, concurrency, link)
    best = advice.best
    if as_json:
        click.echo(json.dumps({
            "recommendation": best.layout.name if best else None, "reason": advice.reason(),
            "model": model.name, "nodes": nodes, "concurrency": concurrency,
            "workload": {"name": chosen.name, "input_len": chosen.input_len, "output_len": chosen.output_len},
            "link": link.to_dict(), "candidates": [c.to_dict() for c in advice.ranked()],
        }, indent=2))
    else:
        show_advice(advice)
    if best is None:
        raise click.exceptions.Exit(1)
