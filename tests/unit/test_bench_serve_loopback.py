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
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkctl.cli import main
from sparkctl.lab.standins import vllm_server

FIRST_TOKEN_S = 0.1
TOKEN_S = 0.008
SEQUENCE_S = 0.002
INPUT_LEN, OUTPUT_LEN = 32, 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    chosen = _free_port()
    env = {**os.environ, "STANDIN_LOAD_SECONDS": "0", "STANDIN_FIRST_TOKEN_SECONDS": str(FIRST_TOKEN_S),
           "STANDIN_TOKEN_SECONDS": str(TOKEN_S), "STANDIN_SEQUENCE_SECONDS": str(SEQUENCE_S),
           "STANDIN_PREFILL_TOKEN_SECONDS": "0"}
    server = subprocess.Popen([sys.executable, vllm_server.__file__, "google/gemma-4-26b-it", "--served-model-name",
                               "gemma", "--host", "127.0.0.1", "--port", str(chosen)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{chosen}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield chosen
    finally:
        server.terminate()
        server.wait(10)


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


def test_the_table_names_every_run(port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = _inventory(tmp_path, [_gemma(port)])
    main(["bench", "serve", "--inventory", str(inventory), "--service", "gemma", "--input-len", "8",
          "--output-len", "4", "--concurrency", "2", "--prompts-per-concurrency", "1", "--warmups", "0"])
    table = capsys.readouterr().out
    assert "equal" in table and "8/4" in table and "2 / 0" in table


@pytest.mark.parametrize(("services", "args", "named"), [
    ([{"name": "qwen", "kind": "ollama", "nodes": ["spark1"], "port": 11434, "model": "qwen2.5:32b",
       "memory_gb": 24}], ["--service", "qwen"], "kind vllm"),
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
