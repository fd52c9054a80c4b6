"""`sparkctl bench serve` end to end against the vLLM stand-in on loopback, proven against its set pace.

The stand-in streams a first token after a set delay and then one token per step whose length grows
with the requests it runs (http_common.Pace), so the figures the sweep must measure are known in
advance: TTFT, the ITL at each concurrency, and the throughput that follows from them. The
inventory is a plain one whose Spark is 127.0.0.1, so the URL comes from the same layout deploy and
status use. The pace is slow enough (100 ms to the first token, 8 ms steps) that a busy two-core
machine's scheduling jitter stays well inside the 10 % the measurements are held to. Everything
listens on 127.0.0.1 only; the server is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkctl.cli import main
from sparkctl.lab.standins import ollama_server, vllm_server

FIRST_TOKEN_S = 0.1
TOKEN_S = 0.008
SEQUENCE_S = 0.002
INPUT_LEN, OUTPUT_LEN = 32, 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(argv: list[str], env: dict[str, str], ready: str) -> Iterator[None]:
    """A stand-in server as its own process until the block ends; stopped by its PID."""
    server = subprocess.Popen([sys.executable, *argv], env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(ready, timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    chosen = _free_port()
    env = {"STANDIN_LOAD_SECONDS": "0", "STANDIN_FIRST_TOKEN_SECONDS": str(FIRST_TOKEN_S),
           "STANDIN_TOKEN_SECONDS": str(TOKEN_S), "STANDIN_SEQUENCE_SECONDS": str(SEQUENCE_S),
           "STANDIN_PREFILL_TOKEN_SECONDS": "0"}
    with _serving([vllm_server.__file__, "google/gemma-4-26b-it", "--served-model-name", "gemma", "--host",
                   "127.0.0.1", "--port", str(chosen)], env, f"http://127.0.0.1:{chosen}/health"):
        yield chosen


OLLAMA_MODEL = "qwen2.5:32b"
NATURAL_TOKENS = 10
"""Where the Ollama stand-in's model stops on its own: below the 16 tokens asked for."""


@pytest.fixture(scope="module")
def ollama_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    chosen = _free_port()
    env = {"OLLAMA_HOST": f"127.0.0.1:{chosen}", "OLLAMA_MODELS": str(tmp_path_factory.mktemp("models")),
           "STANDIN_TOKEN_SECONDS": str(TOKEN_S), "STANDIN_FIRST_TOKEN_SECONDS": str(FIRST_TOKEN_S),
           "STANDIN_NATURAL_TOKENS": str(NATURAL_TOKENS)}
    with _serving([ollama_server.__file__, "serve"], env, f"http://127.0.0.1:{chosen}/"):
        pull = urllib.request.Request(f"http://127.0.0.1:{chosen}/api/pull", method="POST",
                                      data=json.dumps({"model": OLLAMA_MODEL, "stream": False}).encode())
        with urllib.request.urlopen(pull, timeout=30) as response:
            assert json.loads(response.read())["status"] == "success"
        yield chosen


def _inventory(tmp_path: Path, services: list[dict[str, Any]]) -> Path:
    directory = tmp_path / "inv"
    (directory / "group_vars").mkdir(parents=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"sparks": {"hosts": {
        "spark1": {"ansible_host": "127.0.0.1"}, "spark2": {"ansible_host": "127.0.0.2"}}}}}}), encoding="utf-8")
    (directory / "group_vars" / "sparks.yml").write_text(yaml.safe_dump({"sparkctl_services": services}),
                                                         encoding="utf-8")
    return directory


def _gemma(port: int, **extra: Any) -> dict[str, Any]:
    return {"name": "gemma", "kind": "vllm", "nodes": ["spark1"], "port": port, "model": "google/gemma-4-26b-it",
            "memory_gb": 48, **extra}


def test_a_short_sweep_measures_the_stand_ins_pace(port: int, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    inventory = _inventory(tmp_path, [_gemma(port)])
    out = tmp_path / "out"
    main(["bench", "serve", "--inventory", str(inventory), "--service", "gemma", "--input-len", str(INPUT_LEN),
          "--output-len", str(OUTPUT_LEN), "--concurrency", "1,4", "--prompts-per-concurrency", "3", "--json",
          "--out", str(out)])
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["model_id"] == "gemma" and report["base_url"] == f"http://127.0.0.1:{port}"
    assert [r["max_concurrency"] for r in report["results"]] == [1, 4]
    for level in report["results"]:
        c = level["max_concurrency"]
        assert (level["completed"], level["failed"], level["num_prompts"]) == (3 * c, 0, 3 * c)
        assert level["total_input_tokens"] == 3 * c * INPUT_LEN and level["total_output_tokens"] == 3 * c * OUTPUT_LEN
        step = TOKEN_S + SEQUENCE_S * (c - 1)
        assert level["median_itl_ms"] == pytest.approx(step * 1000, rel=0.1)
        assert level["median_tpot_ms"] == pytest.approx(step * 1000, rel=0.1)
        assert level["median_ttft_ms"] == pytest.approx(FIRST_TOKEN_S * 1000, rel=0.1)
        assert level["p50_ttft_ms"] <= level["p90_ttft_ms"] <= level["p99_ttft_ms"]
        expected = c * OUTPUT_LEN / (FIRST_TOKEN_S + (OUTPUT_LEN - 1) * step)
        assert level["output_throughput"] == pytest.approx(expected, rel=0.15)
        assert level["request_throughput"] == pytest.approx(level["output_throughput"] / OUTPUT_LEN, rel=1e-6)
        assert level["max_concurrent_requests"] == c
    assert report["results"][1]["output_throughput"] > 2 * report["results"][0]["output_throughput"]
    written = sorted(p.suffix for p in out.iterdir())
    assert written == [".html", ".json"]
    chart = next(out.glob("*.html")).read_text(encoding="utf-8")
    assert "<svg" in chart and "<script" not in chart and "http" not in chart.split("<svg", 1)[1].replace(
        "http://www.w3.org/2000/svg", "").replace(f"http://127.0.0.1:{port}", "")


def test_concurrency_128_is_measured_within_10_percent(port: int, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """128 requests at once: each step of the stand-in is 8 + 2 x 127 ms, so the pace is far above the
    client's own costs and the load generator must still see it."""
    inventory = _inventory(tmp_path, [_gemma(port)])
    main(["bench", "serve", "--inventory", str(inventory), "--service", "gemma", "--input-len", "8",
          "--output-len", str(OUTPUT_LEN), "--concurrency", "128", "--prompts-per-concurrency", "1", "--json"])
    (level,) = json.loads(capsys.readouterr().out)["results"]
    assert (level["completed"], level["failed"], level["max_concurrent_requests"]) == (128, 0, 128)
    step = TOKEN_S + SEQUENCE_S * 127
    assert level["median_itl_ms"] == pytest.approx(step * 1000, rel=0.1)
    expected = 128 * OUTPUT_LEN / (FIRST_TOKEN_S + (OUTPUT_LEN - 1) * step)
    assert level["output_throughput"] == pytest.approx(expected, rel=0.1)


def _qwen(port: int) -> dict[str, Any]:
    return {"name": "qwen", "kind": "ollama", "nodes": ["spark1"], "port": port, "model": OLLAMA_MODEL,
            "memory_gb": 24}


def test_ollama_gets_text_prompts_and_the_lengths_it_counted(ollama_port: int, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Ollama's /v1 takes no token ids and no ignore_eos: the report holds the lengths the server counted
    (its template's tokens on top of the prompt's words; an answer that stopped before max_tokens), and
    the empty chunk that ends Ollama's text is not a token."""
    inventory = _inventory(tmp_path, [_qwen(ollama_port)])
    main(["bench", "serve", "--inventory", str(inventory), "--service", "qwen", "--input-len", str(INPUT_LEN),
          "--output-len", str(OUTPUT_LEN), "--concurrency", "1,2", "--prompts-per-concurrency", "2", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["backend"] == "ollama" and report["model_id"] == OLLAMA_MODEL
    assert "approximate" in report["prompts"]
    for level in report["results"]:
        done = level["completed"]
        assert done == 2 * level["max_concurrency"] and level["failed"] == 0
        assert level["total_input_tokens"] == done * (INPUT_LEN + ollama_server.TEMPLATE_TOKENS)
        assert level["total_output_tokens"] == done * NATURAL_TOKENS
        assert level["median_itl_ms"] == pytest.approx(TOKEN_S * 1000, rel=0.1)
    one, two = report["results"]  # OLLAMA_NUM_PARALLEL is 1: the second request waits for the first
    assert two["output_throughput"] == pytest.approx(one["output_throughput"], rel=0.15)
    assert two["median_ttft_ms"] > 1.5 * one["median_ttft_ms"]


def test_the_ollama_stand_in_refuses_token_ids_as_ollama_does(ollama_port: int) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{ollama_port}/v1/completions", method="POST",
                                     data=json.dumps({"model": OLLAMA_MODEL, "prompt": [1, 2, 3]}).encode())
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    error = json.loads(refused.value.read())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == ("json: cannot unmarshal array into Go struct field CompletionRequest.prompt "
                                "of type string")


def test_the_table_names_every_run(port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = _inventory(tmp_path, [_gemma(port)])
    main(["bench", "serve", "--inventory", str(inventory), "--service", "gemma", "--input-len", "8",
          "--output-len", "4", "--concurrency", "2", "--prompts-per-concurrency", "1", "--warmups", "0"])
    table = capsys.readouterr().out
    assert "equal" in table and "8/4" in table and "2 / 0" in table


@pytest.mark.parametrize(("services", "args", "named"), [
    ([{"name": "orpheus", "kind": "orpheus-tts", "nodes": ["spark1"], "port": 8766, "backend_port": 5006,
       "memory_gb": 12}], ["--service", "orpheus"], "kind vllm or ollama"),
    ([], ["--service", "nope"], "--service"),
    (None, ["--service", "gemma", "--concurrency", "0"], "--concurrency"),
    (None, ["--service", "gemma", "--workload", "chatty"], "--workload"),
    (None, ["--service", "gemma", "--output-len", "0"], "--output-len"),
    (None, ["--service", "gemma", "--out", "/proc/no-such-place"], "--out"),
    ("localhost", ["--service", "gemma"], ".bind"),
])
def test_bad_input_exits_2_naming_what_to_fix(port: int, tmp_path: Path, services: Any, args: list[str], named: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    declared = ([_gemma(port)] if services is None else [_gemma(port, bind="localhost")] if services == "localhost"
                else services)
    with pytest.raises(SystemExit) as done:
        main(["bench", "serve", "--inventory", str(_inventory(tmp_path, declared)), *args])
    assert done.value.code == 2
    assert named in capsys.readouterr().err


def test_a_service_that_does_not_answer_exits_2_pointing_at_status(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    inventory = _inventory(tmp_path, [_gemma(_free_port())])
    with pytest.raises(SystemExit) as done:
        main(["bench", "serve", "--inventory", str(inventory), "--service", "gemma", "--concurrency", "1"])
    assert done.value.code == 2
    assert "sparkctl status" in capsys.readouterr().err


@pytest.mark.parametrize(("service", "named"), [
    (_gemma(8000), ".nodes"),
    ({"name": "gemma", "kind": "ollama", "nodes": ["spark1"], "port": 11434, "model": "qwen2.5:32b",
      "memory_gb": 24}, "kind vllm"),
])
def test_compare_refuses_what_cannot_be_split_before_any_node_changes(
        tmp_path: Path, service: dict[str, Any], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["bench", "compare", "--inventory", str(_inventory(tmp_path, [service])), "--service", "gemma"])
    assert done.value.code == 2
    assert named in capsys.readouterr().err



def test_compare_starts_only_from_a_healthy_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing answers on the declared port: exit 2 before any playbook runs (no SSH to the Sparks)."""
    big = {"name": "big", "kind": "vllm", "nodes": ["spark1", "spark2"], "pipeline_parallel": 2,
           "port": _free_port(), "model": "openai/gpt-oss-120b", "memory_gb": 28, "bind": "management"}
    with pytest.raises(SystemExit) as done:
        main(["bench", "compare", "--inventory", str(_inventory(tmp_path, [big])), "--service", "big"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "not healthy" in err and "nothing was changed" in err and "equivalent:" not in err
