"""`sparkctl bench serve`'s load: for each workload and concurrency, a warm-up, then N requests kept C at
a time in flight, measured.

For vLLM, prompts are lists of token ids, which its completions API takes as they are: exact input
lengths without a tokenizer download. `max_tokens` is the output length and `ignore_eos` keeps the
model from stopping early, as `vllm bench serve --ignore-eos` does. Ollama's OpenAI layer takes only
text and has no `ignore_eos`: prompts are that many common words (about a token each), and the
lengths reported are the ones the server counted (`usage`), the input approximate, the output what
the model chose to write up to `max_tokens`. Each request has its own random prompt (seeded, so runs
repeat) so no prefix cache shortens a prefill.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sparkctl.serving.client import Connection, Endpoint, ProtocolError
from sparkctl.serving.metrics import PERCENTILES, RequestResult, summarize
from sparkctl.serving.workloads import Workload

TOKEN_ID_RANGE = (1000, 30000)
"""Ordinary tokens in every vocabulary sparkctl serves (all have 32000 or more), away from the
special tokens at the start."""
WORDS = ("time", "year", "people", "way", "day", "man", "thing", "woman", "life", "child", "world", "school",
         "state", "family", "student", "group", "country", "problem", "hand", "part", "place", "case", "week",
         "company", "system", "program", "question", "work", "number", "night", "point", "home", "water", "room",
         "mother", "area", "money", "story", "fact", "month", "lot", "right", "study", "book", "eye", "job", "word",
         "business", "issue", "side", "kind", "head", "house", "service", "friend", "father", "power", "hour",
         "game", "line", "end", "member", "law", "car", "city", "name", "team", "minute", "idea", "body",
         "information", "back", "parent", "face", "others", "level", "office", "door")
"""Common English words, each one token (with its leading space) in the vocabularies of the models
people serve with Ollama."""
PromptKind = Literal["token-ids", "text"]
WARMUP_OUTPUT_TOKENS = 16
"""Warm-up requests only open connections and wake the engine: a short output is enough."""

Progress = Callable[[str, int, int], None]
"""(what runs, requests done, requests in all)."""


@dataclass(frozen=True)
class Unreachable(Exception):
    """Every warm-up request failed: nothing to measure."""


@dataclass(frozen=True)
class Target:
    """The endpoint and the model name it serves."""

    url: str
    model: str
    prompts: PromptKind = "token-ids"


@dataclass(frozen=True)
class Plan:
    workloads: tuple[Workload, ...]
    concurrencies: tuple[int, ...]
    prompts_per_concurrency: int = 4
    """Requests per level = this x concurrency (what reviews run: `--num-prompts` >= 4 x C)."""
    warmups: int = 1
    """Rounds of one short unmeasured request per connection before each measured run."""
    seed: int = 0


def prompt(rng: random.Random, length: int) -> list[int]:
    return [rng.randrange(*TOKEN_ID_RANGE) for _ in range(length)]


def text_prompt(rng: random.Random, length: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(length))


def request_body(target: Target, rng: random.Random, input_len: int, output_len: int) -> dict[str, Any]:
    """The completions request `vllm bench serve` sends for one random-dataset prompt (for a server that
    takes only text, the same with a text prompt and no ignore_eos, which it would not honour)."""
    if target.prompts == "text":
        return {"model": target.model, "prompt": text_prompt(rng, input_len), "max_tokens": output_len,
                "stream": True, "stream_options": {"include_usage": True}}
    return {"model": target.model, "prompt": prompt(rng, input_len), "max_tokens": output_len, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}}


async def _one(connection: Connection, body: dict[str, Any], prompt_len: int) -> RequestResult:
    result = RequestResult(prompt_len=prompt_len)
    try:
        await connection.post_stream("/v1/completions", body, result)
    except (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError) as exc:  # TimeoutError is an OSError
        result.success = False
        result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await connection.close()
    return result


async def run_level(target: Target, workload: Workload, concurrency: int, plan: Plan,
                    progress: Progress) -> dict[str, Any]:
    """One workload at one concurrency: warm-up, then the measured requests; vLLM's result fields."""
    endpoint = Endpoint.parse(target.url)
    rng = random.Random(f"{plan.seed}-{workload.name}-{concurrency}")
    count = plan.prompts_per_concurrency * concurrency
    label = f"{workload.name} {workload.input_len}/{workload.output_len} at concurrency {concurrency}"
    connections = [Connection(endpoint) for _ in range(concurrency)]
    try:
        progress(f"warming up: {label}", 0, count)
        for _ in range(plan.warmups):  # a short request on every connection: all of them open and warm
            warmed = await asyncio.gather(*(_one(c, request_body(target, rng, workload.input_len,
                                                                 min(workload.output_len, WARMUP_OUTPUT_TOKENS)),
                                                 workload.input_len) for c in connections))
            if not any(r.success for r in warmed):
                raise Unreachable(warmed[0].error)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for _ in range(count):
            queue.put_nowait(request_body(target, rng, workload.input_len, workload.output_len))
        results: list[RequestResult] = []

        async def worker(connection: Connection) -> None:
            while not queue.empty():
                body = queue.get_nowait()
                results.append(await _one(connection, body, workload.input_len))
                progress(label, len(results), count)

        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in connections))
        duration = time.perf_counter() - started
    finally:
        for connection in connections:
            await connection.close()
    return {"workload": workload.name, "input_len": workload.input_len, "output_len": workload.output_len,
            "max_concurrency": concurrency, "num_prompts": count, "request_rate": "inf",
            **summarize(results, duration, PERCENTILES)}


def run(target: Target, plan: Plan, progress: Progress) -> list[dict[str, Any]]:
    """Every workload at every concurrency, in order."""
    async def sweep() -> list[dict[str, Any]]:
        return [await run_level(target, workload, concurrency, plan, progress)
                for workload in plan.workloads for concurrency in plan.concurrencies]

    return asyncio.run(sweep())
