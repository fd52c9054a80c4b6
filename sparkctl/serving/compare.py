"""`sparkctl bench compare`: one vLLM service swept as PP=N and as TP=N, side by side, a winner per cell.

The two layouts are the declared service re-split: the same entry of `sparkctl_services` with
`pipeline_parallel: N`, then with `tensor_parallel: N` (N = the Sparks it spans), everything else as
declared. Each is deployed through `sparkctl deploy`'s own playbook with the re-split list given as an
extra variable, which takes precedence over the inventory for that run only: the user's files are
never edited, and the last run, with no extra variable, puts the service back as declared.

A cell is one workload at one concurrency; its winner is the layout with more output tokens/s, or
`tie` when the two are within TIE_TOLERANCE of each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TIE_TOLERANCE = 0.03
"""Output tok/s closer than this share of the faster one are a tie: repeated runs of one deployment
differ by about as much (scheduling, the prefix of each random prompt)."""
CELL_FIELDS = ("output_throughput", "request_throughput", "median_ttft_ms", "p99_ttft_ms", "median_tpot_ms",
               "p99_tpot_ms", "median_itl_ms", "p99_itl_ms", "completed", "failed")
"""What a cell shows of each layout's run (vllm bench serve's names); the whole run is in `runs`."""
PARALLEL_KEYS = {"pp": "pipeline_parallel", "tp": "tensor_parallel"}


@dataclass(frozen=True)
class Variant:
    """One layout to deploy: its name (`pp2`) and the whole `sparkctl_services` list with the service re-split."""

    layout: str
    services: list[Any]


def variants(declared: Sequence[Any], index: int, nodes: int) -> list[Variant]:
    """PP=`nodes`, then TP=`nodes`, of the entry at `index`; the other entries as they are."""
    made = []
    for kind, key in PARALLEL_KEYS.items():
        entry = {k: v for k, v in dict(declared[index]).items() if k not in PARALLEL_KEYS.values()}
        entry[key] = nodes
        made.append(Variant(f"{kind}{nodes}", [entry if i == index else item for i, item in enumerate(declared)]))
    return made


def _cell_key(level: Mapping[str, Any]) -> tuple[str, int, int, int]:
    return str(level["workload"]), int(level["input_len"]), int(level["output_len"]), int(level["max_concurrency"])


def winner(throughputs: Mapping[str, float]) -> tuple[str, float]:
    """The layout with the most output tok/s and its lead (faster / slower), or `tie` within TIE_TOLERANCE."""
    ranked = sorted(throughputs.items(), key=lambda item: -item[1])
    (best, fast), (_, slow) = ranked[0], ranked[-1]
    lead = fast / slow if slow > 0 else float("inf") if fast > 0 else 1.0
    return ("tie" if fast - slow <= TIE_TOLERANCE * fast else best), lead


def cells(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per workload and concurrency that every layout ran, in the order of the first layout's runs."""
    by_layout = {layout: {_cell_key(level): level for level in levels} for layout, levels in runs.items()}
    first = next(iter(runs.values()), [])
    rows = []
    for level in first:
        key = _cell_key(level)
        if not all(key in levels for levels in by_layout.values()):
            continue
        shown = {layout: {f: levels[key][f] for f in CELL_FIELDS} for layout, levels in by_layout.items()}
        best, lead = winner({layout: float(s["output_throughput"]) for layout, s in shown.items()})
        rows.append({"workload": key[0], "input_len": key[1], "output_len": key[2], "max_concurrency": key[3],
                     "results": shown, "winner": best,
                     "lead": round(lead, 3) if lead != float("inf") else None})
    return rows
