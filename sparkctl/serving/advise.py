"""`sparkctl advise`: which layout of a model on N Sparks serves a workload fastest, from first principles.

Decoding one step reads every weight a step touches and every running sequence's KV cache from the
Spark's LPDDR5x, and multiplies by the active parameters; whichever takes longer sets the step time
(a roofline). Prefill is the same with many tokens per step, so it is compute-bound. The layouts
differ only in what each Spark holds and what crosses the cable:

- single: one Spark does it all;
- tpN: every Spark holds 1/N of every layer; each layer ends its attention and its MLP with an
  all-reduce of the step's hidden states across the cable, which the next layer waits for;
- ppN: every Spark holds 1/N of the layers; a step's hidden states cross once per stage boundary,
  and the batch is split into N micro-batches so the stages work at once: with fewer than N
  sequences some stages idle (the pipeline's bubbles);
- replicasN: N independent copies, each with its share of the requests, no fabric traffic.

The constants below are physical or assumed, each documented; nothing is fitted to a benchmark. The
estimate is what the hardware allows; a real server adds its own overheads on top, more so for
small steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from sparkctl.serving.models import GB, ModelShape
from sparkctl.serving.workloads import Workload
from sparkctl.verify.measured import LinkFigures

MEMORY_BANDWIDTH = 273e9
"""LPDDR5x bandwidth of a DGX Spark, shared by CPU and GPU (NVIDIA DGX Spark spec sheet)."""
MEMORY_EFFICIENCY = 0.8
"""Share of that peak a streaming read reaches (assumed: the usual share for memory-bound kernels)."""
PEAK_FLOPS = 62.5e12
"""Dense BF16 tensor FLOP/s of the GB10: its 1 PFLOP of sparse FP4 (spec sheet), halved for dense and
divided by 8 from FP4 to BF16, as on the other Blackwell parts of its class."""
COMPUTE_EFFICIENCY = 0.6
"""Share of peak FLOP/s large GEMMs sustain in serving (assumed)."""
USABLE_MEMORY = 112 * GB
"""A Spark's 128 GB less the 16 GB sparkctl keeps for the OS (sparkctl_memory_reserve_gb)."""
NCCL_STEP_S = 10e-6
"""Software cost of one step of a NCCL collective or send (kernel, proxy thread, completion), on top
of the wire's own latency (assumed, the order NCCL reports for small messages)."""
PREFILL_CHUNK = 8192
"""Tokens per prefill step (vLLM's max_num_batched_tokens for online serving)."""
ACTIVATION_BYTES = 2
"""Hidden states cross the cable in BF16."""

LayoutKind = Literal["single", "tp", "pp", "replicas"]


@dataclass(frozen=True)
class Layout:
    kind: LayoutKind
    nodes: int

    @property
    def name(self) -> str:
        return "single" if self.kind == "single" else f"{self.kind}{self.nodes}"


@dataclass(frozen=True)
class Estimate:
    layout: Layout
    fits: bool
    why_not: str
    batch: int
    """Sequences that run at once on one engine (KV memory may hold fewer than asked)."""
    tok_s: float
    ttft_s: float
    tpot_s: float
    step_s: float
    fabric_s: float
    """Of step_s, the time waiting on the cable."""

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout.name, "fits": self.fits, "tok_s": round(self.tok_s, 1),
                "ttft_ms": round(self.ttft_s * 1e3, 1), "tpot_ms": round(self.tpot_s * 1e3, 2),
                "batch": self.batch, "fabric_ms_per_step": round(self.fabric_s * 1e3, 3),
                **({"why_not": self.why_not} if not self.fits else {})}


class Engine:
    """One serving engine over `layout.nodes` Sparks (one for single and each replica)."""

    def __init__(self, model: ModelShape, kind: LayoutKind, nodes: int, link: LinkFigures) -> None:
        self.model, self.kind, self.link = model, kind, link
        self.split = nodes if kind in ("tp", "pp") else 1

    def _hop_s(self) -> float:
        """Latency of one message across the cable: half a round trip plus NCCL's own step."""
        return self.link.rtt_s / 2 + NCCL_STEP_S

    def _all_reduce_s(self, tokens: float) -> float:
        """Ring all-reduce of `tokens` hidden states over `split` Sparks: 2(N-1) steps, each moving
        1/N of the data."""
        n = self.split
        size = tokens * self.model.hidden * ACTIVATION_BYTES
        return 2 * (n - 1) * (self._hop_s() + size / n / (self.link.gbytes_per_s * GB))

    def _hand_off_s(self, tokens: float) -> float:
        return self._hop_s() + tokens * self.model.hidden * ACTIVATION_BYTES / (self.link.gbytes_per_s * GB)

    def _pass_s(self, tokens: float, kv_bytes: float, share: float) -> float:
        """One forward pass over `tokens` tokens on `share` of the model: the longer of memory and compute."""
        memory = share * (self.model.touched_bytes(tokens) + kv_bytes) / (MEMORY_BANDWIDTH * MEMORY_EFFICIENCY)
        compute = share * 2 * self.model.active_params * tokens / (PEAK_FLOPS * COMPUTE_EFFICIENCY)
        return max(memory, compute)

    def decode_step(self, batch: int, context: float) -> tuple[float, float]:
        """Time between two tokens of one sequence with `batch` running, and the part spent on the cable."""
        kv = batch * self.model.kv_bytes(context)
        if self.kind == "tp":
            fabric = 2 * self.model.layers * self._all_reduce_s(batch)
            return self._pass_s(batch, kv, 1 / self.split) + fabric, fabric
        if self.kind == "pp":
            micro = math.ceil(batch / self.split)
            stage = self._pass_s(micro, kv / batch * micro, 1 / self.split)
            return self.split * (stage + self._hand_off_s(micro)), self.split * self._hand_off_s(micro)
        return self._pass_s(batch, kv, 1.0), 0.0

    def prefill(self, tokens: float, context: float) -> float:
        """Time to prefill `tokens` prompt tokens (in chunks), sequences of `context` tokens."""
        chunks = max(1, math.ceil(tokens / PREFILL_CHUNK))
        chunk = tokens / chunks
        kv = self.model.kv_bytes(context) * chunk / max(context, 1)
        if self.kind == "tp":
            per_chunk = self._pass_s(chunk, kv, 1 / self.split) + 2 * self.model.layers * self._all_reduce_s(chunk)
            return chunks * per_chunk
        if self.kind == "pp":  # chunks flow through the stages one behind the other
            stage = self._pass_s(chunk, kv, 1 / self.split) + self._hand_off_s(chunk)
            return (chunks + self.split - 1) * stage
        return chunks * self._pass_s(chunk, kv, 1.0)


def max_sequences(model: ModelShape, nodes: int, context: float) -> int:
    """Sequences of `context` tokens whose KV cache fits beside the weights on `nodes` Sparks."""
    room = nodes * USABLE_MEMORY - model.weight_bytes
    return max(0, int(room // model.kv_bytes(context)))


def estimate(model: ModelShape, layout: Layout, workload: Workload, concurrency: int,
             link: LinkFigures) -> Estimate:
    """Throughput and latencies of `concurrency` clients each sending `workload` requests back to back."""
    engines = layout.nodes if layout.kind == "replicas" else 1
    engine_nodes = 1 if layout.kind in ("single", "replicas") else layout.nodes
    context = workload.input_len + workload.output_len
    if model.weight_bytes / engine_nodes > USABLE_MEMORY:
        return _unfit(layout, f"{model.weight_bytes / engine_nodes / GB:.0f} GB of weights per Spark, "
                              f"{USABLE_MEMORY / GB:.0f} GB usable")
    clients = math.ceil(concurrency / engines)
    batch = min(clients, max_sequences(model, engine_nodes, context))
    if batch < 1:
        return _unfit(layout, f"no room for the KV cache of one {context}-token sequence")
    engine = Engine(model, layout.kind, layout.nodes, link)
    itl, fabric = engine.decode_step(batch, workload.input_len + workload.output_len / 2)
    one_prefill = engine.prefill(workload.input_len, context)
    all_prefill = engine.prefill(batch * workload.input_len, context)
    cycle = all_prefill + workload.output_len * itl
    busy_engines = min(engines, concurrency)
    tok_s = busy_engines * batch * workload.output_len / cycle
    waiting = (clients - batch) / batch * cycle  # clients beyond what fits wait for a whole cycle
    ttft = one_prefill + (all_prefill - one_prefill) / 2 + waiting
    tpot = itl + (all_prefill - one_prefill) / max(workload.output_len, 1)
    return Estimate(layout, True, "", batch, tok_s, ttft, tpot, itl, fabric)


def _unfit(layout: Layout, why: str) -> Estimate:
    return Estimate(layout, False, why, 0, 0.0, 0.0, 0.0, 0.0, 0.0)


def layouts(nodes: int) -> list[Layout]:
    if nodes == 1:
        return [Layout("single", 1)]
    return [Layout("single", 1), Layout("tp", nodes), Layout("pp", nodes), Layout("replicas", nodes)]


@dataclass(frozen=True)
class Advice:
    model: ModelShape
    nodes: int
    workload: Workload
    concurrency: int
    link: LinkFigures
    candidates: list[Estimate]

    @property
    def best(self) -> Estimate | None:
        fitting = [c for c in self.candidates if c.fits]
        return max(fitting, key=lambda c: (round(c.tok_s, 6), -c.ttft_s)) if fitting else None

    def ranked(self) -> list[Estimate]:
        """The recommendation first, then the others by throughput, those that do not fit last."""
        return sorted(self.candidates, key=lambda c: (not c.fits, -c.tok_s, c.ttft_s))

    def reason(self) -> str:
        best = self.best
        if best is None:
            return f"{self.model.name} does not fit {self.nodes} Spark(s): " + self.candidates[-1].why_not
        rest = [c for c in self.ranked() if c.fits and c is not best]
        lead = (f", {best.tok_s / rest[0].tok_s:.2f}x {rest[0].layout.name}" if rest and rest[0].tok_s else "")
        kind, n, c = best.layout.kind, best.layout.nodes, self.concurrency
        if kind == "tp":
            why = (f"each Spark reads 1/{n} of the weights per step, and the {2 * self.model.layers} all-reduces "
                   f"cost {best.fabric_s * 1e3:.1f} of its {best.step_s * 1e3:.1f} ms")
        elif kind == "pp":
            why = (f"{c} sequences keep the {n} stages busy, and only the hand-offs cross the cable "
                   f"({best.fabric_s * 1e3:.2f} ms per step) where TP waits on {2 * self.model.layers} all-reduces")
        elif kind == "replicas":
            why = f"the model fits one Spark, so {n} copies serve {math.ceil(c / n)} requests each with no fabric traffic"
        else:
            why = "it fits one Spark, and at this concurrency the fabric costs more than a second Spark gains"
        return f"{best.layout.name}: {best.tok_s:.0f} output tok/s{lead}; {why}"


def advise(model: ModelShape, nodes: int, workload: Workload, concurrency: int, link: LinkFigures) -> Advice:
    return Advice(model, nodes, workload, concurrency, link,
                  [estimate(model, layout, workload, concurrency, link) for layout in layouts(nodes)])
