"""`sparkctl bench serve`: a deployed vLLM service measured across workloads and concurrencies.

The service's URL is the one `sparkctl deploy` gave it, laid out from the inventory exactly as deploy
and status lay it out, so the benchmark talks to what clients talk to.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sparkctl.commands.options import inventory_option, inventory_used
from sparkctl.errors import EnvironmentProblem, InputError
from sparkctl.serving.workloads import WORKLOADS

if TYPE_CHECKING:
    from sparkctl.cluster import Cluster
    from sparkctl.services.spec import Service, ServicesSpec
    from sparkctl.serving.sweep import Plan

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_CONCURRENCY = "1,2,4,8,16,32,64,128"
MAX_CONCURRENCY = 1024
PROMPTS = {
    "vllm": "token ids: input lengths exact, ignore_eos: output lengths exact",
    "ollama": "text: input lengths approximate (the server's count is reported), no ignore_eos: the model may "
              "stop before max_tokens",
}
"""What the prompts of a sweep were, per kind of server, said in every report."""


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


def _service(cluster: Cluster, name: str, kinds: tuple[str, ...]) -> tuple[ServicesSpec, Service, str]:
    """The declared vllm service `name`, its spec and the URL the controller reaches it by; InputError for
    what cannot be benched."""
    from sparkctl.services.layout import lay_out
    from sparkctl.services.spec import KEY, read_services

    spec = read_services(cluster.inventory)
    service = next((s for s in spec.services if s.name == name), None)
    if service is None:
        names = ", ".join(s.name for s in spec.services if s.kind in kinds)
        none = f"the {'/'.join(kinds)} services (none declared in {KEY})"
        raise InputError(f"{name} is not a declared service", key="--service", fix=f"name one of {names or none}")
    if service.kind not in kinds:
        raise InputError(f"{name} is a {service.kind} service; this drives the completions API of "
                         f"{' and '.join(kinds)}", key="--service", fix=f"name a service of kind {' or '.join(kinds)}")
    if service.bind == "localhost":
        raise InputError(f"{name} listens on {service.head}'s loopback only, so this machine cannot reach it",
                         file=spec.source, key=f"{KEY}[{service.index}].bind",
                         fix="bind it to management, fabric or all, and run sparkctl deploy")
    head = next(i for i in lay_out(spec, cluster.settings, cluster.plan) if i.service == name and i.rank == 0)
    assert head.url is not None
    return spec, service, head.url


def _served_model(url: str, expected: str | None) -> str:
    """The model to ask for: `expected` if /v1/models lists it (Ollama serves what was pulled, by its own
    name), else the first listed (vLLM serves the service under its own name)."""
    try:
        with urllib.request.urlopen(url + "/v1/models", timeout=10) as response:
            listed = [str(m["id"]) for m in json.loads(response.read())["data"]]
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise EnvironmentProblem(f"{url}/v1/models did not list a model ({exc}): is the service up? "
                                 "See sparkctl status") from None
    if expected is not None and expected not in listed:
        raise EnvironmentProblem(f"{url}/v1/models does not list {expected} (it lists {', '.join(listed) or 'none'})"
                                 ": run sparkctl deploy, which pulls it")
    if not listed:
        raise EnvironmentProblem(f"{url}/v1/models lists no model: is the service up? See sparkctl status")
    return expected or listed[0]


@click.group()
def bench() -> None:
    """Measure what the cluster serves."""


def _sweep_options(command: F) -> F:
    """The options that say what a sweep runs, shared by serve and compare."""
    for option in reversed((
        inventory_option,
        click.option("--service", "-s", "name", required=True, metavar="NAME",
                     help="The service to measure (vllm; bench serve also takes ollama)."),
        click.option("--workload", "-w", type=click.Choice([*WORKLOADS, "all"]), default="equal", show_default=True,
                     help="equal 1024/1024, prefill-heavy 8192/1024, decode-heavy 1024/8192 (input/output tokens), "
                          "or all."),
        click.option("--input-len", type=int, default=None, help="Override the workloads' input tokens."),
        click.option("--output-len", type=int, default=None, help="Override the workloads' output tokens."),
        click.option("--concurrency", "-c", default=DEFAULT_CONCURRENCY, show_default=True, metavar="C,C,...",
                     help="Requests kept in flight, one measured run each."),
        click.option("--prompts-per-concurrency", type=click.IntRange(1, 100), default=4, show_default=True,
                     help="Requests per run = this x concurrency."),
        click.option("--warmups", type=click.IntRange(0, 64), default=1, show_default=True,
                     help="Rounds of one unmeasured short request per connection before each run."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random token-id prompts."),
        click.option("--json", "as_json", is_flag=True,
                     help="Machine-readable: vllm bench serve's result fields per run (compare: also the cells "
                          "side by side)."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Also write the JSON and an HTML chart of tok/s against concurrency into this directory."),
    )):
        command = option(command)
    return command


def _plan(workload: str, input_len: int | None, output_len: int | None, concurrency: str,
          prompts_per_concurrency: int, warmups: int, seed: int, out: Path | None) -> Plan:
    """The sweep the options ask for, checked (and --out made) before anything runs or is deployed."""
    from sparkctl.serving import sweep
    from sparkctl.serving.workloads import pick

    levels = parse_concurrency(concurrency)
    workloads = tuple(pick(workload, input_len, output_len))
    if out is not None:  # before a sweep that may take an hour, not after it
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot be made: {exc}", key="--out", fix="name a directory you can write") from None
    return sweep.Plan(workloads, levels, prompts_per_concurrency, warmups, seed)


def _sweep(service: Service, url: str, plan: Plan) -> tuple[str, list[dict[str, Any]]]:
    """The model the service serves and the sweep's results, with a progress bar."""
    from sparkctl.serving import sweep
    from sparkctl.views.bench_view import progress_bar

    name, text = service.name, service.kind == "ollama"
    model = _served_model(url, service.model if text else None)
    with progress_bar() as update:
        try:
            return model, sweep.run(sweep.Target(url, model, "text" if text else "token-ids"), plan, update)
        except sweep.Unreachable as exc:
            raise EnvironmentProblem(f"{name} at {url} answered no warm-up request ({exc}): see sparkctl status "
                                     f"--service {name}") from None


def _write(out: Path, stem: str, report: dict[str, Any], charts: dict[str, str]) -> None:
    """The report as JSON and each chart as HTML (suffixed with its key when there are several)."""
    try:
        (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        for key, page in charts.items():
            (out / f"{stem}{'-' + key if key else ''}.html").write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the results: {exc}", key="--out", fix="name a directory you can write") from None
    click.echo(f"wrote {out / stem}.json and {len(charts)} chart(s) beside it", err=True)


@bench.command("serve")
@_sweep_options
def serve(inventory: Path, name: str, workload: str, input_len: int | None, output_len: int | None,
          concurrency: str, prompts_per_concurrency: int, warmups: int, seed: int, as_json: bool,
          out: Path | None) -> None:
    """Sweep a deployed vLLM or Ollama service: output tok/s, requests/s, TTFT, TPOT and ITL per concurrency.

    vLLM gets token-id prompts of exact lengths and ignore_eos. Ollama takes only text and may stop
    before max_tokens: its input lengths are approximate and every length reported is the one the
    server counted. Exit 0 when every request succeeded, 1 when one failed, 2 on bad input or an unreachable service.
    """
    from sparkctl.cluster import load_cluster
    from sparkctl.commands.options import vault_used
    from sparkctl.serving import chart
    from sparkctl.views.bench_view import show_sweep

    plan = _plan(workload, input_len, output_len, concurrency, prompts_per_concurrency, warmups, seed, out)
    _, service, url = _service(load_cluster(inventory, vault=vault_used()), name, ("vllm", "ollama"))
    model, results = _sweep(service, url, plan)
    report: dict[str, Any] = {
        "inventory": inventory_used().to_dict(), "date": time.strftime("%Y%m%d-%H%M%S"), "backend": service.kind,
        "endpoint_type": "openai", "service": name, "base_url": url, "model_id": model,
        "prompts": PROMPTS[service.kind], "ok": all(r["failed"] == 0 for r in results), "results": results,
    }
    if out is not None:
        title = f"{name} at {url}" if model == name else f"{name} ({model}) at {url}"
        _write(out, f"bench-serve-{name}-{report['date']}", report, {"": chart.render(title, results)})
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        show_sweep(name, url, results, PROMPTS[service.kind])
    if not report["ok"]:
        raise click.exceptions.Exit(1)


@bench.command("compare")
@_sweep_options
def compare(inventory: Path, name: str, workload: str, input_len: int | None, output_len: int | None,
            concurrency: str, prompts_per_concurrency: int, warmups: int, seed: int, as_json: bool,
            out: Path | None) -> None:
    """Sweep a vLLM service across Sparks deployed as PP=N, then as TP=N; side by side, the winner per cell.

    Each layout is deployed as sparkctl deploy deploys (only this service is restarted), with the layout
    passed as an extra variable: the inventory's files are not edited. At the end the service is
    deployed again as declared. Exit 0 when every request succeeded, 1 when one failed, 2 on bad input or
    a service that is not healthy to begin with.
    """
    import tempfile

    from sparkctl.cluster import load_cluster
    from sparkctl.commands.deploy import run_services
    from sparkctl.commands.options import vault_used
    from sparkctl.errors import SparkctlError
    from sparkctl.services.spec import KEY
    from sparkctl.serving import chart
    from sparkctl.serving.compare import cells, variants
    from sparkctl.views.bench_view import show_compare

    plan = _plan(workload, input_len, output_len, concurrency, prompts_per_concurrency, warmups, seed, out)
    cluster = load_cluster(inventory, vault=vault_used())
    spec, service, url = _service(cluster, name, ("vllm",))
    if len(service.nodes) < 2:
        raise InputError(f"{name} runs on {service.head} alone: there is nothing to split", file=spec.source,
                         key=f"{KEY}[{service.index}].nodes", fix="list the Sparks to spread it over, e.g. "
                         "[spark1, spark2], and run sparkctl deploy")
    _require_healthy(name, url)  # a dead engine would stay dead through a deploy that changes nothing
    declared = next(iter(cluster.inventory)).values[KEY]
    layouts = variants(declared, service.index, len(service.nodes))
    for variant in layouts:  # every layout is checked before any node changes
        _check_variant(cluster, variant.services, variant.layout, name)
    runs: dict[str, list[dict[str, Any]]] = {}
    model = name
    with tempfile.TemporaryDirectory(prefix="sparkctl-compare-") as private:  # 0700: the list may hold secrets
        try:
            for variant in layouts:
                override = Path(private) / f"{variant.layout}.json"
                override.touch(mode=0o600)
                override.write_text(json.dumps({KEY: variant.services}), encoding="utf-8")
                run_services(inventory, cluster.inventory, (name,), override=override,
                             title=f"sparkctl bench compare: {name} as {variant.layout}")
                model, runs[variant.layout] = _sweep(service, url, plan)
        finally:
            try:
                run_services(inventory, cluster.inventory, (name,),
                             title=f"sparkctl bench compare: {name} back as declared")
            except SparkctlError as exc:
                raise SparkctlError(f"{name} could not be put back as declared ({exc}): run sparkctl deploy "
                                    f"--service {name}") from None
    rows = cells(runs)
    report: dict[str, Any] = {
        "inventory": inventory_used().to_dict(), "date": time.strftime("%Y%m%d-%H%M%S"), "backend": "vllm",
        "service": name, "base_url": url, "model_id": model, "nodes": len(service.nodes),
        "layouts": list(runs),
        "restored": {"tensor_parallel": service.tensor_parallel, "pipeline_parallel": service.pipeline_parallel},
        "ok": all(r["failed"] == 0 for levels in runs.values() for r in levels), "cells": rows, "runs": runs,
    }
    if out is not None:
        _write(out, f"bench-compare-{name}-{report['date']}", report,
               {layout: chart.render(f"{name} ({model}) as {layout} at {url}", levels)
                for layout, levels in runs.items()})
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        show_compare(name, url, list(runs), rows)
    if not report["ok"]:
        raise click.exceptions.Exit(1)


def _require_healthy(name: str, url: str) -> None:
    """EnvironmentProblem unless vLLM's /health answers 200: the comparison starts from a running service."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=10):
            return
    except urllib.error.HTTPError as exc:
        why = f"/health answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        why = f"/health did not answer ({exc})"
    raise EnvironmentProblem(f"{name} at {url} is not healthy ({why}): see sparkctl status --service {name}, and "
                             "sparkctl deploy before comparing; nothing was changed")


def _check_variant(cluster: Cluster, services: list[Any], layout: str, name: str) -> None:
    """The re-split list read as deploy will read it; InputError naming the layout if it is refused."""
    from dataclasses import replace

    from sparkctl.inventory import Inventory
    from sparkctl.services.spec import KEY, read_services

    inventory = cluster.inventory
    hosts = {host: replace(values, values={**values.values, KEY: services}) for host, values in inventory.hosts.items()}
    try:
        read_services(Inventory(inventory.path, inventory.hosts_file, hosts))
    except InputError as exc:
        raise InputError(f"{name} cannot be deployed as {layout}: {exc}") from None
