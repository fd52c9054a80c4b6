"""Serving performance on a provisioned 2-Spark lab: `sparkctl bench serve` against a service
`sparkctl deploy` ran, and `sparkctl advise` pricing the link with what `verify-link` measured.

The service is the lab's vLLM stand-in, run by the lab's docker stand-in under its systemd unit;
the benchmark finds its URL in the inventory as status does, and drives it over the lab's management
network from this machine. The stand-in's default pace (vllm_server.PACE) fixes what it must measure.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sparkctl.lab.standins.vllm_server import PACE
from tests.labkit import SPARKCTL, Lab, running_lab

pytestmark = pytest.mark.lab


def _sparkctl(lab: Lab, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SPARKCTL, *args, "--inventory", str(lab.inventory)], env=env,
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, nodes=2, topology="direct", prefix="bs") as made:
        provisioned = _sparkctl(made, "provision")
        assert provisioned.returncode == 0, provisioned.stderr[-3000:]
        path = made.inventory / "group_vars" / "sparks.yml"
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
        values["sparkctl_services"] = [{"name": "gemma", "kind": "vllm", "nodes": ["spark1"], "port": 8002,
                                        "model": "google/gemma-4-26b-it", "memory_gb": 48}]
        path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
        deployed = _sparkctl(made, "deploy")
        assert deployed.returncode == 0, deployed.stderr[-4000:]
        yield made


def test_bench_serve_measures_the_deployed_service(lab: Lab, tmp_path: Path) -> None:
    result = _sparkctl(lab, "bench", "serve", "--service", "gemma", "--input-len", "16", "--output-len", "16",
                       "--concurrency", "1,4", "--prompts-per-concurrency", "2", "--json", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["ok"] and report["model_id"] == "gemma" and report["base_url"].endswith(":8002")
    for level in report["results"]:
        c = level["max_concurrency"]
        assert level["completed"] == 2 * c and level["failed"] == 0
        assert level["total_output_tokens"] == 2 * c * 16
        step = PACE.token_seconds + PACE.sequence_seconds * (c - 1)
        assert level["median_itl_ms"] == pytest.approx(step * 1000, rel=0.25)
        assert level["median_ttft_ms"] >= PACE.first_token(16) * 1000
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".html", ".json"]


def test_advise_prices_the_link_verify_link_measured(lab: Lab, tmp_path: Path) -> None:
    env = {**os.environ, "SPARKCTL_STATE_DIR": str(tmp_path / "state")}
    before = json.loads(_sparkctl(lab, "advise", "--model", "gpt-oss-120b", "--json", env=env).stdout)
    assert before["link"]["source"].startswith("nominal")
    verified = _sparkctl(lab, "verify-link", "--duration", "2", env=env)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-2000:]
    assert "measured link figures saved for sparkctl advise" in verified.stderr
    (saved,) = (tmp_path / "state" / "link-figures").iterdir()
    cable = json.loads(saved.read_text(encoding="utf-8"))["cables"][0]
    assert len(cable["halves_gbps"]) == 2 and cable["gbps"] > 0 and cable["rtt_ms"] > 0
    after = json.loads(_sparkctl(lab, "advise", "--model", "gpt-oss-120b", "--json", env=env).stdout)
    assert after["link"]["source"].startswith("verify-link")
    assert after["link"]["gbytes_per_s"] == round(cable["gbps"] / 8, 3)
