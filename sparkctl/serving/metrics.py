"""What one benchmark run measured, computed the way `vllm bench serve` computes it, under its names.

Each request records when it was sent, when each piece of text arrived and how many tokens the
server says it generated. From those: TTFT (first text), ITL (every gap between two pieces of
text), TPOT ((latency - TTFT) / (output tokens - 1), for requests of more than one token), E2EL
(the whole request), throughputs over the run's wall time. Percentiles interpolate linearly
between the two nearest ranks, as numpy.percentile does, so figures compare with vLLM's own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PERCENTILES = (50.0, 90.0, 99.0)


@dataclass
class RequestResult:
    """One request as the client saw it (times in seconds, from time.perf_counter)."""

    prompt_len: int
    start_time: float = 0.0
    success: bool = False
    ttft: float = 0.0
    itl: list[float] = field(default_factory=list)
    latency: float = 0.0
    output_tokens: int = 0
    error: str = ""


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _stats(name: str, seconds: Sequence[float], percentiles: Sequence[float]) -> dict[str, float]:
    """mean_/median_/std_/pNN_<name>_ms, population std as numpy.std; all 0 for no values."""
    values = list(seconds) or [0.0]
    out = {f"mean_{name}_ms": statistics.fmean(values) * 1000,
           f"median_{name}_ms": statistics.median(values) * 1000,
           f"std_{name}_ms": statistics.pstdev(values) * 1000}
    for p in percentiles:
        word = str(int(p)) if int(p) == p else str(p)
        out[f"p{word}_{name}_ms"] = percentile(values, p) * 1000
    return out


def peak_output(results: Sequence[RequestResult]) -> tuple[float, int]:
    """The most output tokens in any one-second bucket of the run, and the most requests in flight at
    once (vLLM's max_output_tokens_per_s and max_concurrent_requests)."""
    done = [r for r in results if r.success]
    if not done:
        return 0.0, 0
    origin = min(r.start_time for r in done)
    buckets: dict[int, int] = {}
    events: list[tuple[float, int]] = []
    for r in done:
        moment = r.start_time + r.ttft
        stamps = [moment]
        for gap in r.itl:
            moment += gap
            stamps.append(moment)
        for stamp in stamps:
            second = int(stamp - origin)
            buckets[second] = buckets.get(second, 0) + 1
        events += [(r.start_time, 1), (r.start_time + r.latency, -1)]
    running = peak = 0
    for _, delta in sorted(events):
        running += delta
        peak = max(peak, running)
    return float(max(buckets.values())), peak


def summarize(results: Sequence[RequestResult], duration: float,
              percentiles: Sequence[float] = PERCENTILES) -> dict[str, Any]:
    """The result fields of `vllm bench serve` for one run: its `--save-result` JSON, and of its
    per-request lists only `errors` ("" for a request that succeeded)."""
    done = [r for r in results if r.success]
    output_lens = [r.output_tokens if r.success else 0 for r in results]
    total_input = sum(r.prompt_len for r in done)
    total_output = sum(output_lens)
    tpots = [(r.latency - r.ttft) / (r.output_tokens - 1) for r in done if r.output_tokens > 1]
    peak_tokens, peak_requests = peak_output(results)
    wall = duration if duration > 0 else float("nan")
    summary: dict[str, Any] = {
        "duration": duration,
        "completed": len(done),
        "failed": len(results) - len(done),
        "total_input_tokens": total_input,
        "total_output_tokens": total_output,
        "request_throughput": len(done) / wall,
        "output_throughput": total_output / wall,
        "total_token_throughput": (total_input + total_output) / wall,
        "max_output_tokens_per_s": peak_tokens,
        "max_concurrent_requests": peak_requests,
    }
    summary |= _stats("ttft", [r.ttft for r in done], percentiles)
    summary |= _stats("tpot", tpots, percentiles)
    summary |= _stats("itl", [gap for r in done for gap in r.itl], percentiles)
    summary |= _stats("e2el", [r.latency for r in done], percentiles)
    summary["errors"] = [r.error for r in results]
    return summary
