"""`sparkctl bench serve`: a deployed vLLM service measured across workloads and concurrencies.

The service's URL is the one `sparkctl deploy` gave it, laid out from the inventory exactly as deploy
and status lay it out, so the benchmark talks to what clients talk to.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from sparkctl.commands.options import inventory_option, inventory_used
from sparkctl.errors import EnvironmentProblem, InputError
from sparkctl.serving.workloads import WORKLOADS

DEFAULT_CONCURRENCY = "1,2,4,8,16,32,64,128"
MAX_CONCURRENCY = 1024


def parse_concurrency(text: str) -> tuple[int, ...]:
    """`1,2,4` -> (1, 2, 4): positive, at most MAX_CONCURRENCY, each once, in the order given."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= MAX_CONCURRENCY:
            raise InputError(f"{part!r} is not a concurrency", key="--concurrency",
                             fix=f"list whole numbers from 1 to {MAX_CONCURRENCY}, e.g. {DEFAULT_CONCURRENCY}")
        if int(part) not in values:
            values.append(int(part))
    return tuple(values)


def _target(inventory: Path, name: str) -> str:
    """The URL the controller reaches service `name` by; InputError for what cannot be benched."""
    from sparkctl.cluster import load_cluster
    from sparkctl.commands.options import vault_used
    from sparkctl.services.layout import lay_out
    from sparkctl.services.spec import KEY, read_services

    cluster = load_cluster(inventory, vault=vault_used())
    spec = read_services(cluster.inventory)
    service = next((s for s in spec.services if s.name == name), None)
    if service is None:
        names = ", ".join(s.name for s in spec.services if s.kind == "vllm")
        raise InputError(f"{name} is not a declared service", key="--service",
                         fix=f"name one of {names or f'the vllm services (none declared in {KEY})'}")
    if service.kind != "vllm":
        raise InputError(f"{name} is a {service.kind} service; bench serve drives vLLM's completions API with "
                         "token-id prompts", key="--service", fix="name a service of kind vllm")
    if service.bind == "localhost":
        raise InputError(f"{name} listens on {service.head}'s loopback only, so this machine cannot reach it",
                         file=spec.source, key=f"{KEY}[{service.index}].bind",
                         fix="bind it to management, fabric or all, and run sparkctl deploy")
    head = next(i for i in lay_out(spec, cluster.settings, cluster.plan) if i.service == name and i.rank == 0)
    assert head.url is not None
    return head.url


def _served_model(url: str) -> str:
    """The first model /v1/models lists (vLLM serves the service under its own name)."""
    try:
        with urllib.request.urlopen(url + "/v1/models", timeout=10) as response:
            listed = json.loads(response.read())
        return str(listed["data"][0]["id"])
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise EnvironmentProblem(f"{url}/v1/models did not list a model ({exc}): is the service up? "
                                 "See sparkctl status") from None


@click.group()
def bench() -> None:
    """Measure what the cluster serves."""


@bench.command("serve")
@inventory_option
@click.option("--service", "-s", "name", required=True, metavar="NAME", help="The vllm service to measure.")
@click.option("--workload", "-w", type=click.Choice([*WORKLOADS, "all"]), default="equal", show_default=True,
              help="equal 1024/1024, prefill-heavy 8192/1024, decode-heavy 1024/8192 (input/output tokens), or all.")
@click.option("--input-len", type=int, default=None, help="Override the workloads' input tokens.")
@click.option("--output-len", type=int, default=None, help="Override the workloads' output tokens.")
@click.option("--concurrency", "-c", default=DEFAULT_CONCURRENCY, show_default=True, metavar="C,C,...",
              help="Requests kept in flight, one measured run each.")
@click.option("--prompts-per-concurrency", type=click.IntRange(1, 100), default=4, show_default=True,
              help="Requests per run = this x concurrency.")
@click.option("--warmups", type=click.IntRange(0, 64), default=1, show_default=True,
              help="Rounds of one unmeasured short request per connection before each run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random token-id prompts.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: vllm bench serve's result fields per run.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the JSON and an HTML chart of tok/s against concurrency into this directory.")
def serve(inventory: Path, name: str, workload: str, input_len: int | None, output_len: int | None,
          concurrency: str, prompts_per_concurrency: int, warmups: int, seed: int, as_json: bool,
          out: Path | None) -> None:
    """Sweep a deployed vLLM service: output tok/s, requests/s, TTFT, TPOT and ITL per concurrency.

    Exit 0 when every request succeeded, 1 when one failed, 2 on bad input or an unreachable service.
    """
    from sparkctl.serving import chart, sweep
    from sparkctl.serving.workloads import pick
    from sparkctl.views.bench_view import progress_bar, show_sweep

    levels = parse_concurrency(concurrency)
    workloads = tuple(pick(workload, input_len, output_len))
    if out is not None:  # before a sweep that may take an hour, not after it
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot be made: {exc}", key="--out", fix="name a directory you can write") from None
    url = _target(inventory, name)
    model = _served_model(url)
    plan = sweep.Plan(workloads, levels, prompts_per_concurrency, warmups, seed)
    with progress_bar() as update:
        try:
            results = sweep.run(sweep.Target(url, model), plan, update)
        except sweep.Unreachable as exc:
            raise EnvironmentProblem(f"{name} at {url} answered no warm-up request ({exc}): see sparkctl status "
                                     f"--service {name}") from None
    report: dict[str, Any] = {
        "inventory": inventory_used().to_dict(), "date": time.strftime("%Y%m%d-%H%M%S"), "backend": "vllm",
        "endpoint_type": "openai", "service": name, "base_url": url, "model_id": model,
        "ok": all(r["failed"] == 0 for r in results), "results": results,
    }
    if out is not None:
        stem = out / f"bench-serve-{name}-{report['date']}"
        title = f"{name} at {url}" if model == name else f"{name} ({model}) at {url}"
        try:
            stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            stem.with_suffix(".html").write_text(chart.render(title, results), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write the results: {exc}", key="--out", fix="name a directory you can write") from None
        click.echo(f"wrote {stem}.json and {stem}.html", err=True)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        show_sweep(name, url, results)
    if not report["ok"]:
        raise click.exceptions.Exit(1)
