"""`sparkctl deploy` and `status` end to end on a provisioned 2-Spark lab, in order on one lab.

The lab's nodes have no container engine and no GPU: their `sparkctl_container_cli` is the lab's
stand-in for docker, which checks the `docker run` a unit makes and starts stand-in servers with the
real HTTP APIs. Everything else is real: systemd units on the nodes, SSH, the fabric, and the
`openai` and `ollama` Python clients talking to the services from this machine. On the same lab,
`sparkctl bench serve` measures the vLLM stand-in (whose pace, vllm_server.PACE, fixes what it must
find) and `sparkctl advise` prices the link with what `verify-link` measured.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ollama
import openai
import pytest
import yaml

from sparkctl.lab.standins.vllm_server import PACE
from tests.labkit import SPARKCTL, Lab, running_lab

pytestmark = pytest.mark.lab

LAYOUT: list[dict[str, Any]] = [
    {"name": "gemma", "kind": "vllm", "nodes": ["spark1"], "port": 8002, "model": "google/gemma-4-26b-it",
     "memory_gb": 48},
    {"name": "qwen", "kind": "ollama", "nodes": ["spark1"], "port": 11434, "model": "qwen2.5:32b", "memory_gb": 24},
    {"name": "orpheus", "kind": "orpheus-tts", "nodes": ["spark2"], "port": 8766, "backend_port": 5006,
     "memory_gb": 12, "bind": "all"},
    {"name": "voiceclone", "kind": "qwen-tts", "nodes": ["spark2"], "port": 8765, "memory_gb": 8},
    {"name": "bridge", "kind": "container", "nodes": ["spark2"], "port": 9000, "image": "example/voice-proxy:1.0",
     "connect": {"LLM_URL": "gemma", "TTS_URL": "orpheus"}, "memory_gb": 2, "health": {"path": "/healthz"}},
    {"name": "big", "kind": "vllm", "nodes": ["spark1", "spark2"], "pipeline_parallel": 2, "port": 8000,
     "model": "openai/gpt-oss-120b", "memory_gb": 28},
]


def _declare(lab: Lab, services: list[dict[str, Any]]) -> None:
    """Set sparkctl_services in the lab inventory's group_vars, as a user edits it."""
    path = lab.inventory / "group_vars" / "sparks.yml"
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    values["sparkctl_services"] = services
    path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")


def _sparkctl(lab: Lab, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SPARKCTL, *args, "--inventory", str(lab.inventory)], env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def _status(lab: Lab) -> tuple[int, dict[str, Any]]:
    result = _sparkctl(lab, "status", "--json")
    return result.returncode, json.loads(result.stdout)


def _by_unit(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["unit"]: s for s in report["services"]}


@pytest.fixture(scope="module")
def lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, nodes=2, topology="direct", prefix="sv") as made:
        provisioned = _sparkctl(made, "provision")
        assert provisioned.returncode == 0, provisioned.stderr[-3000:]
        yield made


FIRST_DEPLOY: dict[str, str] = {}
"""What the first deploy printed (its live progress), for the tests of pulls and models."""


@pytest.fixture(scope="module")
def deployed(lab: Lab) -> dict[str, Any]:
    _declare(lab, LAYOUT)
    result = _sparkctl(lab, "deploy")
    assert result.returncode == 0, result.stderr[-4000:]
    FIRST_DEPLOY["stderr"] = result.stderr
    code, report = _status(lab)
    assert code == 0, report
    return report


def test_every_service_of_the_two_spark_layout_is_healthy(deployed: dict[str, Any]) -> None:
    units = _by_unit(deployed)
    assert set(units) == {f"sparkctl-svc-{n}.service" for n in
                          ("gemma", "qwen", "orpheus", "voiceclone", "bridge", "big")} | {
        "sparkctl-svc-big-rank1.service"}
    assert all(s["healthy"] and s["state"] == "active" for s in deployed["services"]), deployed
    assert units["sparkctl-svc-big-rank1.service"]["node"] == "spark2"


def test_the_real_clients_get_answers(lab: Lab, deployed: dict[str, Any]) -> None:
    units = _by_unit(deployed)
    client = openai.OpenAI(base_url=units["sparkctl-svc-gemma.service"]["url"] + "/v1", api_key="none")
    assert [m.id for m in client.models.list()] == ["gemma"]
    chat = client.chat.completions.create(model="gemma", messages=[{"role": "user", "content": "hello"}],
                                          max_tokens=8)
    assert chat.choices[0].message.content and chat.usage is not None and chat.usage.completion_tokens > 0
    stream = client.completions.create(model="gemma", prompt="count", max_tokens=5, stream=True,
                                       stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    big = openai.OpenAI(base_url=units["sparkctl-svc-big.service"]["url"] + "/v1", api_key="none")
    assert big.chat.completions.create(model="big", messages=[{"role": "user", "content": "hi"}],
                                       max_tokens=4).choices[0].message.content
    local = ollama.Client(host=units["sparkctl-svc-qwen.service"]["url"])
    assert "qwen2.5:32b" in [m.model for m in local.list().models]  # pulled by deploy
    answer = local.generate(model="qwen2.5:32b", prompt="hi")
    assert answer.done and answer.response


def test_bench_serve_measures_the_deployed_service(lab: Lab, deployed: dict[str, Any], tmp_path: Path) -> None:
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
        # TPOT, not ITL: the stand-in keeps its deadlines, so a node starved of CPU sends late tokens
        # back to back (ITLs near 0) but the time per output token stays the pace
        assert level["median_tpot_ms"] == pytest.approx(step * 1000, rel=0.25)
        assert level["median_ttft_ms"] >= PACE.first_token(16) * 1000
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".html", ".json"]


def test_advise_prices_the_link_verify_link_measured(lab: Lab, deployed: dict[str, Any], tmp_path: Path) -> None:
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


def test_tts_returns_wav_audio(deployed: dict[str, Any]) -> None:
    url = _by_unit(deployed)["sparkctl-svc-orpheus.service"]["url"]
    request = urllib.request.Request(url + "/v1/audio/speech", method="POST",
                                     data=json.dumps({"input": "Hello from spark two", "model": "orpheus",
                                                      "voice": "tara", "response_format": "wav"}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        audio = response.read()
    with wave.open(io.BytesIO(audio)) as clip:
        assert clip.getnchannels() == 1 and clip.getframerate() == 24000 and clip.getnframes() > 0


def test_connect_hands_the_container_the_urls_of_its_services(deployed: dict[str, Any]) -> None:
    units = _by_unit(deployed)
    with urllib.request.urlopen(units["sparkctl-svc-bridge.service"]["url"] + "/", timeout=10) as response:
        seen = json.loads(response.read())
    assert seen["LLM_URL"] == units["sparkctl-svc-gemma.service"]["url"]
    assert seen["TTS_URL"] == "http://127.0.0.1:8766"  # orpheus runs on the same Spark


def test_a_second_deploy_changes_nothing(lab: Lab, deployed: dict[str, Any]) -> None:
    outcome = lab.provision_api(playbook=Path(__file__).resolve().parents[2] / "playbooks" / "services.yml")
    assert outcome.status == "successful", outcome.failures
    assert {h: s.changed for h, s in outcome.recap.hosts.items()} == {"spark1": 0, "spark2": 0}


def test_a_unit_stopped_behind_sparkctls_back_is_named_and_healed(lab: Lab, deployed: dict[str, Any]) -> None:
    lab.sh("spark2", "systemctl", "stop", "sparkctl-svc-voiceclone.service")
    code, report = _status(lab)
    assert code == 1 and not report["ok"]
    broken = _by_unit(report)["sparkctl-svc-voiceclone.service"]
    assert not broken["healthy"] and broken["state"] == "inactive" and "inactive" in broken["detail"]
    assert _sparkctl(lab, "deploy").returncode == 0
    code, report = _status(lab)
    assert code == 0 and _by_unit(report)["sparkctl-svc-voiceclone.service"]["healthy"]


def test_pulling_the_fabric_cable_makes_the_model_across_sparks_unhealthy(lab: Lab, deployed: dict[str, Any]) -> None:
    lab.cli("uncable", "spark1:p0")
    try:
        code, report = _status(lab)
        for _ in range(20):
            if not _by_unit(report)["sparkctl-svc-big.service"]["healthy"]:
                break
            code, report = _status(lab)
        big = _by_unit(report)["sparkctl-svc-big.service"]
        assert code == 1 and not big["healthy"], big
        assert "meet over the fabric" in big["detail"] and "verify-link" in big["detail"]
        assert _by_unit(report)["sparkctl-svc-gemma.service"]["healthy"]  # one Spark: not affected
    finally:
        lab.cli("cable", "spark1:p0", "spark2:p0")


def test_a_model_across_sparks_whose_engine_died_is_restarted_by_the_next_deploy(
        lab: Lab, deployed: dict[str, Any]) -> None:
    """The cable is back (the test above), but the head's engine died when its rank's connection broke: its
    unit still runs and /health answers 503. A deploy restarts it, says why, and the service serves again."""
    big = _by_unit(_status(lab)[1])["sparkctl-svc-big.service"]
    assert big["state"] == "active" and not big["healthy"] and "engine dead" in big["detail"], big
    result = _sparkctl(lab, "deploy")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    said = " ".join(result.stderr.split())  # the run's report, with what the play noted
    assert "note spark1: Restarted on spark1, unhealthy:" in said and "engine dead" in said, said[-3000:]
    code, report = _status(lab)
    assert code == 0 and _by_unit(report)["sparkctl-svc-big.service"]["healthy"]


def test_tensor_parallel_across_two_sparks_and_a_removed_service_is_gone(lab: Lab) -> None:
    layout = [dict(s) for s in LAYOUT if s["name"] != "voiceclone"]
    big = next(s for s in layout if s["name"] == "big")
    big.pop("pipeline_parallel")
    big["tensor_parallel"] = 2
    _declare(lab, layout)
    result = _sparkctl(lab, "deploy")
    assert result.returncode == 0, result.stderr[-4000:]
    code, report = _status(lab)
    assert code == 0, report
    units = _by_unit(report)
    assert "sparkctl-svc-voiceclone.service" not in units
    gone = lab.sh("spark2", "systemctl", "cat", "sparkctl-svc-voiceclone.service", check=False)
    assert gone.returncode != 0
    assert lab.sh("spark2", "ls", "/etc/sparkctl/services/", check=False).stdout.count("voiceclone") == 0
    unit = lab.sh("spark1", "systemctl", "cat", "sparkctl-svc-big.service").stdout
    assert '"--tensor-parallel-size" "2"' in unit and '"--pipeline-parallel-size" "1"' in unit


# --- Images and models: pulled on every Spark before any unit starts; a model fetched once on its head and
# copied to the other ranks over the fabric, never again once a node has it --------------------------------

BIG_MODEL = "openai/gpt-oss-120b"
CACHE = "/var/lib/sparkctl/models/hub"


def _fetches(lab: Lab, node: str) -> list[str]:
    """Models the lab's `hf download` stand-in wrote on `node` (one line per download)."""
    return lab.sh(node, "cat", "/var/lib/sparkctl-lab/fetches", check=False).stdout.split()


def _host_ip(lab: Lab, node: str, unit: str) -> str:
    """A rank's own fabric address, from the env file deploy wrote for it."""
    env = lab.sh(node, "cat", f"/etc/sparkctl/services/{unit.removesuffix('.service')}.env").stdout
    return next(line.split("=", 1)[1] for line in env.splitlines() if line.startswith("VLLM_HOST_IP="))


def _logins_from(lab: Lab, node: str, address: str) -> int:
    """How often `node`'s sshd let root in from `address` (its own journal)."""
    journal = lab.sh(node, "journalctl", "--unit", "ssh.service", "--no-pager", "--output", "cat").stdout
    return journal.count(f"Accepted publickey for root from {address} ")


def _marker(lab: Lab, node: str, model: str) -> dict[str, Any]:
    path = f"{CACHE}/models--{model.replace('/', '--')}/.sparkctl-complete.json"
    return dict(json.loads(lab.sh(node, "cat", path).stdout))


def _digests(lab: Lab, node: str, model: str) -> str:
    snapshot = f"{CACHE}/models--{model.replace('/', '--')}/snapshots"
    return lab.sh(node, "sh", "-c", f"cd {snapshot} && sha256sum */*").stdout


def test_images_were_pulled_on_both_sparks_with_progress_before_any_unit_started(
        lab: Lab, deployed: dict[str, Any]) -> None:
    shown = FIRST_DEPLOY["stderr"]
    # A node whose pulls end before the wait's first try shows no progress line: at least one must have.
    assert re.search(r"^spark[12]: \d/\d images: [^;]*?pulling \d/4\s+layers", shown, re.MULTILINE), shown[-3000:]
    for node in ("spark1", "spark2"):
        journal = lab.sh(node, "journalctl", "--no-pager", "--output", "short-monotonic", "_PID=1").stdout.splitlines()
        pulls = [n for n, line in enumerate(journal) if "sparkctl-pull-" in line]
        starts = [n for n, line in enumerate(journal) if "Starting sparkctl-svc-" in line]
        assert pulls and starts and max(pulls) < min(starts), journal[-40:]


def test_the_worker_got_the_model_from_the_head_over_the_fabric(lab: Lab, deployed: dict[str, Any]) -> None:
    assert BIG_MODEL in _fetches(lab, "spark1") and BIG_MODEL not in _fetches(lab, "spark2")
    head_address = json.loads(lab.sh("spark2", "cat", "/etc/sparkctl/services.json").stdout)["instances"]
    head_address = next(i["head_address"] for i in head_address if i["service"] == "big")
    worker_address = _host_ip(lab, "spark2", "sparkctl-svc-big-rank1.service")
    marker = _marker(lab, "spark2", BIG_MODEL)
    assert marker["origin"] == {"copied_from": "spark1", "address": head_address}
    assert _digests(lab, "spark2", BIG_MODEL) == _digests(lab, "spark1", BIG_MODEL)
    assert _logins_from(lab, "spark1", worker_address) >= 1  # rsync's SSH came in on the fabric
    assert "google/gemma-4-26b-it" not in _fetches(lab, "spark2")  # a single-Spark model stays on its Spark


def test_a_redeploy_neither_fetches_nor_copies_again(lab: Lab, deployed: dict[str, Any]) -> None:
    worker_address = _host_ip(lab, "spark2", "sparkctl-svc-big-rank1.service")
    before = (_fetches(lab, "spark1"), _fetches(lab, "spark2"), _logins_from(lab, "spark1", worker_address),
              _marker(lab, "spark2", BIG_MODEL))
    result = _sparkctl(lab, "deploy")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "changed:" not in result.stderr
    after = (_fetches(lab, "spark1"), _fetches(lab, "spark2"), _logins_from(lab, "spark1", worker_address),
             _marker(lab, "spark2", BIG_MODEL))
    assert after == before


def test_a_model_the_worker_already_has_is_not_copied(lab: Lab) -> None:
    shared = "example/shared-7b"
    solo = {"name": "solo", "kind": "vllm", "nodes": ["spark2"], "port": 8010, "model": shared, "memory_gb": 4}
    _declare(lab, [*LAYOUT, solo])
    assert _sparkctl(lab, "deploy", "--service", "solo").returncode == 0
    assert _fetches(lab, "spark2").count(shared) == 1
    had = _marker(lab, "spark2", shared)
    worker_address = _host_ip(lab, "spark2", "sparkctl-svc-big-rank1.service")
    logins = _logins_from(lab, "spark1", worker_address)
    duo = {**solo, "name": "duo", "nodes": ["spark1", "spark2"], "tensor_parallel": 2, "master_port": 29510}
    _declare(lab, [*LAYOUT, duo])
    result = _sparkctl(lab, "deploy")
    assert result.returncode == 0, result.stderr[-3000:]
    assert _fetches(lab, "spark1").count(shared) == 1  # the head fetched it: it had none
    assert _fetches(lab, "spark2").count(shared) == 1 and _marker(lab, "spark2", shared) == had
    assert _logins_from(lab, "spark1", worker_address) == logins  # nothing came over the fabric
    code, report = _status(lab)
    assert code == 0 and _by_unit(report)["sparkctl-svc-duo.service"]["healthy"], report
    assert lab.sh("spark2", "systemctl", "cat", "sparkctl-svc-solo.service", check=False).returncode != 0


def test_bench_compare_sweeps_pp_then_tp_and_puts_the_service_back_as_declared(lab: Lab) -> None:
    """The stand-in paces tokens the same whatever the split (it does not imitate TP or PP), so both
    layouts must measure its pace; what the test proves is the redeploys: PP, then TP, then as declared,
    each seen in the log of the engine that started, and the inventory's files untouched."""
    layout = [dict(s) for s in LAYOUT if s["name"] != "voiceclone"]  # as declared before: big as PP=2
    _declare(lab, layout)
    vars_file = lab.inventory / "group_vars" / "sparks.yml"
    before = vars_file.read_bytes()
    # A deploy that changes nothing starts nothing: when big already runs as PP=2, the PP step leaves it be.
    running = lab.sh("spark1", "systemctl", "cat", "sparkctl-svc-big.service", check=False).stdout
    already_pp = '"--tensor-parallel-size" "1"' in running and '"--pipeline-parallel-size" "2"' in running
    since = lab.sh("spark1", "date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    result = _sparkctl(lab, "bench", "compare", "--service", "big", "--input-len", "16", "--output-len", "16",
                       "--concurrency", "1,4", "--prompts-per-concurrency", "2", "--json")
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    assert report["ok"] and report["layouts"] == ["pp2", "tp2"] and report["nodes"] == 2
    assert report["restored"] == {"tensor_parallel": 1, "pipeline_parallel": 2} and vars_file.read_bytes() == before
    assert [(c["workload"], c["max_concurrency"]) for c in report["cells"]] == [("equal", 1), ("equal", 4)]
    for cell in report["cells"]:
        c = cell["max_concurrency"]
        assert cell["winner"] in ("pp2", "tp2", "tie")
        for run in cell["results"].values():
            assert (run["completed"], run["failed"]) == (2 * c, 0)
            step = PACE.token_seconds + PACE.sequence_seconds * (c - 1)
            assert run["median_tpot_ms"] == pytest.approx(step * 1000, rel=0.25)
    started = [line for line in lab.sh("spark1", "journalctl", "-u", "sparkctl-svc-big.service", "--since", since,
                                       "-o", "cat", "--no-pager").stdout.splitlines() if "vllm serve" in line]
    pp, tp = "tp 1, pp 2, 2 node(s)", "tp 2, pp 1, 2 node(s)"
    assert [line.rsplit(": ", 1)[-1] for line in started] == ([] if already_pp else [pp]) + [tp, pp], started
    code, status = _status(lab)
    assert code == 0 and _by_unit(status)["sparkctl-svc-big.service"]["healthy"], status
    unit = lab.sh("spark1", "systemctl", "cat", "sparkctl-svc-big.service").stdout
    assert '"--tensor-parallel-size" "1"' in unit and '"--pipeline-parallel-size" "2"' in unit


def test_bench_serve_measures_an_ollama_service_with_the_lengths_it_counted(lab: Lab, deployed: dict[str, Any]) -> None:
    """Ollama takes text prompts and no ignore_eos: the report holds what the server counted."""
    result = _sparkctl(lab, "bench", "serve", "--service", "qwen", "--input-len", "16", "--output-len", "8",
                       "--concurrency", "1,2", "--prompts-per-concurrency", "2", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["ok"] and report["backend"] == "ollama" and report["model_id"] == "qwen2.5:32b"
    assert "approximate" in report["prompts"]
    for level in report["results"]:
        done = level["completed"]
        assert done == 2 * level["max_concurrency"] and level["failed"] == 0
        assert level["total_output_tokens"] == done * 8
        assert level["total_input_tokens"] > done * 16  # the words, and the template's tokens around them
