"""Service declarations: the two typical layouts plan, every bad declaration exits 2 naming file, key and fix."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkctl.cluster import load_cluster
from sparkctl.errors import InputError
from sparkctl.inventory import load_inventory
from sparkctl.services.layout import lay_out, node_files
from sparkctl.services.spec import read_services

SPARKCTL = str(Path(sys.executable).parent / "sparkctl")
TWO_SPARKS: list[dict[str, Any]] = [
    {"name": "gemma", "kind": "vllm", "nodes": ["spark1"], "port": 8002, "model": "google/gemma-4-26b-it",
     "memory_gb": 48},
    {"name": "qwen", "kind": "ollama", "nodes": ["spark1"], "port": 11434, "model": "qwen2.5:32b", "memory_gb": 24},
    {"name": "orpheus", "kind": "orpheus-tts", "nodes": ["spark2"], "port": 8766, "backend_port": 5006,
     "memory_gb": 12, "bind": "all"},
    {"name": "voiceclone", "kind": "qwen-tts", "nodes": ["spark2"], "port": 8765, "memory_gb": 8},
    {"name": "bridge", "kind": "container", "nodes": ["spark2"], "port": 9000, "image": "example/voice-proxy:1.0",
     "connect": {"LLM_URL": "gemma", "TTS_URL": "orpheus"}, "memory_gb": 2, "env": {"HF_TOKEN": "hf_$ecret%x"}},
    {"name": "big", "kind": "vllm", "nodes": ["spark1", "spark2"], "pipeline_parallel": 2, "port": 8000,
     "model": "openai/gpt-oss-120b", "memory_gb": 28},
]


def _inventory(tmp_path: Path, services: Any, **extra: Any) -> Path:
    directory = tmp_path / "inv"
    (directory / "group_vars").mkdir(parents=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"sparks": {"hosts": {
        "spark1": {"ansible_host": "192.168.1.101"}, "spark2": {"ansible_host": "192.168.1.102"}}}}}}),
        encoding="utf-8")
    (directory / "group_vars" / "sparks.yml").write_text(
        yaml.safe_dump({"sparkctl_services": services, **extra}), encoding="utf-8")
    return directory


def _laid_out(tmp_path: Path, services: Any) -> list[Any]:
    inventory = _inventory(tmp_path, services)
    cluster = load_cluster(inventory)
    return lay_out(read_services(load_inventory(inventory)), cluster.settings, cluster.plan)


def test_two_spark_layout_plans_units_on_each_node(tmp_path: Path) -> None:
    instances = _laid_out(tmp_path, TWO_SPARKS)
    units = {(i.node, i.unit) for i in instances}
    assert ("spark1", "sparkctl-svc-gemma.service") in units
    assert ("spark2", "sparkctl-svc-big-rank1.service") in units and ("spark1", "sparkctl-svc-big.service") in units
    bridge = next(i for i in instances if i.service == "bridge")
    # gemma listens on spark1's management address; orpheus on every address of spark2, reached on the cable.
    assert "LLM_URL=http://192.168.1.101:8002\n" in bridge.env_text
    assert "TTS_URL=http://127.0.0.1:8766\n" in bridge.env_text  # same Spark
    gemma = next(i for i in instances if i.service == "gemma")
    assert gemma.url == "http://192.168.1.101:8002"
    assert '"--gpus" "all"' in gemma.unit_text and '"--network" "host"' in gemma.unit_text
    assert '"--env-file" "/etc/sparkctl/fabric.env"' in gemma.unit_text


def test_a_connect_url_uses_the_fabric_address_on_the_cable(tmp_path: Path) -> None:
    services = copy.deepcopy(TWO_SPARKS)
    services[4]["nodes"] = ["spark1"]  # bridge on spark1 now, orpheus on spark2 listens everywhere
    services[0]["port"] = 8003
    instances = _laid_out(tmp_path, services)
    bridge = next(i for i in instances if i.service == "bridge")
    cluster = load_cluster(_inventory(tmp_path / "again", services))
    spark2_p0 = next(i for i in cluster.plan.nodes["spark2"].interfaces if i.name == "enp1s0f0np0")
    assert f"TTS_URL=http://{spark2_p0.addresses[0].ip}:8766\n" in bridge.env_text


def test_ranks_of_a_model_across_sparks_meet_on_the_fabric(tmp_path: Path) -> None:
    instances = _laid_out(tmp_path, TWO_SPARKS)
    head = next(i for i in instances if i.unit == "sparkctl-svc-big.service")
    worker = next(i for i in instances if i.unit == "sparkctl-svc-big-rank1.service")
    cluster = load_cluster(_inventory(tmp_path / "again", TWO_SPARKS))
    head_address = str(next(i for i in cluster.plan.nodes["spark1"].interfaces
                            if i.name == "enp1s0f0np0").addresses[0].ip)
    assert f'"--master-addr" "{head_address}"' in head.unit_text and '"--node-rank" "0"' in head.unit_text
    assert f'"--master-addr" "{head_address}"' in worker.unit_text and '"--headless"' in worker.unit_text
    assert '"--port"' not in worker.unit_text and worker.url is None
    assert '"--device" "/dev/infiniband"' in worker.unit_text
    assert "VLLM_HOST_IP=" in worker.env_text and head_address not in worker.env_text


def test_values_are_quoted_for_systemd_and_kept_literal_in_env_files(tmp_path: Path) -> None:
    instances = _laid_out(tmp_path, TWO_SPARKS)
    bridge = next(i for i in instances if i.service == "bridge")
    assert "HF_TOKEN=hf_$ecret%x\n" in bridge.env_text
    files = node_files(read_services(load_inventory(_inventory(tmp_path / "b", TWO_SPARKS))), instances, "spark2")
    manifest = json.loads(files["manifest"]["content"])  # type: ignore[index]
    assert {i["service"] for i in manifest["instances"]} == {"orpheus", "voiceclone", "bridge", "big"}
    assert all("env_text" not in i for i in manifest["instances"])  # tokens never land in the manifest


BAD: list[tuple[str, Any, str]] = [
    ("unknown kind", {"kind": "tgi"}, r"sparkctl_services\[0\]\.kind: unknown kind 'tgi' — use one of"),
    ("unknown node", {"nodes": ["spark9"]}, r"\[0\]\.nodes: 'spark9' is not a Spark of the inventory"),
    ("several nodes for ollama", {"kind": "ollama", "model": "x:1", "nodes": ["spark1", "spark2"]},
     r"runs on one Spark"),
    ("bad name", {"name": "Gemma_1"}, r"\[0\]\.name: 'Gemma_1' is not allowed"),
    ("newline in env", {"env": {"A": "x\nExecStartPre=/bin/sh"}}, r"\[0\]\.env\.A: .* line break"),
    ("bad env key", {"env": {"A-B": "x"}}, r"env\.'A-B': is not an environment variable name"),
    ("unpinned image", {"image": "vllm/vllm-openai:latest"}, r"is not pinned"),
    ("tp x pp", {"nodes": ["spark1", "spark2"], "tensor_parallel": 2, "pipeline_parallel": 2},
     r"tensor_parallel 2 x pipeline_parallel 2 = 4, but it runs on 2"),
    ("unknown field", {"replicas": 2}, r"\[0\]\.replicas: is not a service field"),
    ("bad bind", {"bind": "0.0.0.0"}, r"\[0\]\.bind: '0.0.0.0' is not a place to listen"),
    ("port out of range", {"port": 70000}, r"\[0\]\.port: 70000 is not a whole number from 1 to 65535"),
    ("no model", {"model": None}, r"\[0\]\.model: is missing"),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_declarations_are_refused_naming_file_key_and_fix(
    tmp_path: Path, case: str, change: dict[str, Any], message: str
) -> None:
    service = {**TWO_SPARKS[0], **change}
    service = {k: v for k, v in service.items() if v is not None}
    inventory = _inventory(tmp_path, [service])
    with pytest.raises(InputError, match=message) as raised:
        read_services(load_inventory(inventory))
    assert re.fullmatch(re.escape(str(inventory / "group_vars" / "sparks.yml")) + r"(:\d+)?", str(raised.value.file))


def test_clashes_between_services(tmp_path: Path) -> None:
    services = copy.deepcopy(TWO_SPARKS)
    services[1]["port"] = 8002
    with pytest.raises(InputError, match=r"qwen's port 8002 on spark1 is already gemma port's"):
        read_services(load_inventory(_inventory(tmp_path / "a", services)))
    services = copy.deepcopy(TWO_SPARKS)
    services[2]["backend_port"] = 8765
    with pytest.raises(InputError, match=r"voiceclone's port 8765 on spark2 is already orpheus backend_port's"):
        read_services(load_inventory(_inventory(tmp_path / "b", services)))
    services = copy.deepcopy(TWO_SPARKS)
    services[3]["port"] = 29500
    with pytest.raises(InputError, match=r"big's master_port 29500 on spark2 is already voiceclone port's"):
        read_services(load_inventory(_inventory(tmp_path / "c", services)))
    services = copy.deepcopy(TWO_SPARKS)
    services.append(dict(services[0]))
    with pytest.raises(InputError, match=r"gemma is declared twice"):
        read_services(load_inventory(_inventory(tmp_path / "d", services)))
    services = copy.deepcopy(TWO_SPARKS)
    services[4]["connect"] = {"LLM_URL": "nope"}
    with pytest.raises(InputError, match=r"\[4\]\.connect\.LLM_URL: nope is not another declared service"):
        read_services(load_inventory(_inventory(tmp_path / "e", services)))


def test_memory_over_budget_names_node_services_and_sum(tmp_path: Path) -> None:
    services = copy.deepcopy(TWO_SPARKS)
    services[0]["memory_gb"] = 70
    with pytest.raises(InputError, match=r"the services on spark1 need 122 GB \(gemma 70 GB, qwen 24 GB, big 28 GB\)"
                                         r", but it has 112 GB for services"):
        read_services(load_inventory(_inventory(tmp_path, services)))


def test_deploy_refuses_bad_input_with_exit_2_before_any_node(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, [{**TWO_SPARKS[0], "kind": "tgi"}])
    result = subprocess.run([SPARKCTL, "deploy", "--inventory", str(inventory)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "unknown kind 'tgi'" in result.stderr and "Traceback" not in result.stderr
    unknown = subprocess.run([SPARKCTL, "status", "--inventory", str(_inventory(tmp_path / "x", TWO_SPARKS)),
                              "--service", "nope"], capture_output=True, text=True, check=False)
    assert unknown.returncode == 2 and "--service: nope is not a declared service" in unknown.stderr
