"""Models and images of services, without a network: who fetches and who copies from where, the completeness
marker, the copy's commands, the pull progress, and the progress line deploy shows per node."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sparkctl.cluster import load_cluster
from sparkctl.inventory import load_inventory
from sparkctl.lab.standins import hf_cli
from sparkctl.node import image_pulls, model_cache, service_units
from sparkctl.provisioning.events import HostProgress, parse_event
from sparkctl.provisioning.progress import Progress
from sparkctl.services.layout import MODEL_CACHE_DIR, lay_out, node_files
from sparkctl.services.spec import read_services
from tests.unit.test_services_spec import TWO_SPARKS, _inventory


def _files(tmp_path: Path, node: str) -> dict[str, Any]:
    inventory = _inventory(tmp_path, TWO_SPARKS)
    cluster = load_cluster(inventory)
    spec = read_services(load_inventory(inventory))
    return node_files(spec, lay_out(spec, cluster.settings, cluster.plan), node)


def test_the_head_fetches_with_the_images_own_cli_and_the_worker_copies_from_the_heads_fabric_address(
        tmp_path: Path) -> None:
    head = {t["model"]: t for t in _files(tmp_path / "a", "spark1")["models"]}
    worker = _files(tmp_path / "b", "spark2")["models"]
    assert set(head) == {"google/gemma-4-26b-it", "openai/gpt-oss-120b"}
    assert all(t["action"] == "fetch" for t in head.values())
    argv = head["openai/gpt-oss-120b"]["argv"]
    assert argv[-5:] == ["--entrypoint", "hf", "vllm/vllm-openai:gemma4-cu130", "download", "openai/gpt-oss-120b"]
    assert "--env-file" in argv and "/etc/sparkctl/services/sparkctl-svc-big.env" in argv  # a token reaches hf
    assert f"{MODEL_CACHE_DIR}:/root/.cache/huggingface" in argv
    plan = load_cluster(_inventory(tmp_path / "c", TWO_SPARKS)).plan
    on_cable = str(next(i for i in plan.nodes["spark1"].interfaces if i.name == "enp1s0f0np0").addresses[0].ip)
    assert worker == [{"service": "big", "model": "openai/gpt-oss-120b", "cache": MODEL_CACHE_DIR,
                       "action": "copy", "from_node": "spark1", "from_address": on_cable}]


def test_vllm_units_never_ask_the_hub_once_deploy_filled_the_cache(tmp_path: Path) -> None:
    env = _files(tmp_path, "spark2")["env_files"]
    assert "HF_HUB_OFFLINE=1\n" in env["/etc/sparkctl/services/sparkctl-svc-big-rank1.env"]
    assert "HF_HUB_OFFLINE" not in env["/etc/sparkctl/services/sparkctl-svc-orpheus.env"]


def test_units_do_not_pull_in_network_online(tmp_path: Path) -> None:
    for unit in _files(tmp_path, "spark1")["units"]:
        assert "Wants=network-online.target" not in unit["content"]
        assert "After=network-online.target docker.service" in unit["content"]


def _fetched(cache: Path, model: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the lab's `hf download` stand-in writes: the layout of the real hub cache."""
    monkeypatch.setenv("STANDIN_VOLUMES", json.dumps({"/root/.cache/huggingface": str(cache)}))
    monkeypatch.setenv("STANDIN_STATE_DIR", str(cache.parent / "state"))
    monkeypatch.setenv("STANDIN_MODEL_BYTES", "4096")
    hf_cli.download(model)
    return model_cache.repo_dir(str(cache), model)


def test_the_marker_makes_a_model_present_and_a_lost_or_cut_file_makes_it_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _fetched(tmp_path / "cache", "org/m", monkeypatch)
    assert model_cache.missing(repo, "org/m") == "no complete copy of org/m (no .sparkctl-complete.json)"
    marker = model_cache.write_marker(repo, "org/m", {"fetched_with": "test"})
    assert marker["files"] == {"config.json": len(json.dumps({"_name_or_path": "org/m", "model_type": "standin"})),
                               "model.safetensors": 4096}
    assert model_cache.missing(repo, "org/m") is None
    assert model_cache.missing(repo, "org/other") is not None
    blob = (repo / "snapshots" / marker["revision"] / "model.safetensors").resolve()
    blob.write_bytes(b"cut")
    assert model_cache.missing(repo, "org/m") == "model.safetensors is 3 bytes, not 4096"
    blob.unlink()
    assert model_cache.missing(repo, "org/m") == "model.safetensors is -1 bytes, not 4096"


class Recorder:
    def __init__(self, answers: dict[str, tuple[int, str, str]] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answers = answers or {}

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        return next((a for key, a in self.answers.items() if key in " ".join(argv)), (0, "", ""))


def test_a_missing_model_is_fetched_once_in_its_own_unit_with_progress_and_marked_when_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_cache, "FETCH_LOGS", tmp_path / "logs")
    cache = tmp_path / "cache"
    task = {"service": "a", "model": "org/m", "cache": str(cache), "action": "fetch",
            "argv": ["docker", "run", "--entrypoint", "hf", "img:1", "download", "org/m"]}
    unit = {"state": ""}

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        calls.append(list(argv))
        if argv[0] == "systemd-run":
            unit["state"] = "active"
        return 0, unit["state"] + "\n" if argv[1] == "show" else "", ""

    calls: list[list[str]] = []
    records = model_cache.start_fetches([task, {**task, "service": "b"}], run, check=False)
    assert records == [{"model": "org/m", "result": "fetching", "changed": True}]  # two services, one model
    (started,) = [c for c in calls if c[0] == "systemd-run"]
    assert started[-len(task["argv"]):] == task["argv"] and started[1].startswith("--unit=sparkctl-fetch-")
    assert model_cache.start_fetches([task], run, check=False)[0]["result"] == "already fetching"
    _fetched(cache, "org/m", monkeypatch)
    done, line, _ = model_cache.fetch_progress([task], run)
    assert not done and line.startswith("0/1 models: org/m: fetching (0.00 GB so far)")
    unit["state"] = ""  # ended well: systemd dropped the transient unit
    done, line, states = model_cache.fetch_progress([task], run)
    assert done and line == "1/1 models" and states[0]["state"] == "fetched"
    assert model_cache.missing(model_cache.repo_dir(str(cache), "org/m"), "org/m") is None
    assert model_cache.start_fetches([task], run, check=False)[0]["changed"] is False
    assert len([c for c in calls if c[0] == "systemd-run"]) == 1


def test_a_failed_download_says_what_it_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_cache, "FETCH_LOGS", tmp_path / "logs")
    task = {"service": "a", "model": "org/gated", "cache": str(tmp_path), "action": "fetch", "argv": ["x"]}
    (tmp_path / "logs").mkdir()
    model_cache._log("org/gated").write_text("401 Client Error: access to model org/gated is restricted\n")
    done, line, states = model_cache.fetch_progress([task], Recorder({"show": (0, "failed\n", "")}))
    assert done and states[0]["state"] == "failed" and "restricted" in line


def test_a_worker_copies_with_rsync_over_ssh_to_the_heads_fabric_address_and_checks_the_heads_marker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    head_repo = _fetched(tmp_path / "head", "org/m", monkeypatch)
    model_cache.write_marker(head_repo, "org/m", {"fetched_with": "test"})
    cache = tmp_path / "worker"
    task = {"service": "a", "model": "org/m", "cache": str(cache), "action": "copy", "from_node": "spark1",
            "from_address": "198.19.0.1"}

    def rsync(argv: Sequence[str]) -> tuple[int, str, str]:  # as rsync would, from the head's directory
        calls.append(list(argv))
        source, target = argv[-2].split(":", 1)[1], argv[-1]
        source = source.replace(str(model_cache.repo_dir(str(cache), "org/m")), str(head_repo))
        if source.endswith("/"):
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(model_cache.MARKER))
        else:
            shutil.copy(source, target)
        return 0, "", ""

    calls: list[list[str]] = []
    records = model_cache.copy_missing([task], rsync, check=False)
    assert records[0]["result"] == "copied org/m from spark1 over the fabric (198.19.0.1)"
    first, second = calls
    assert first[:2] == ["rsync", "-a"] and "--exclude" in first and first[-2].startswith("spark1:/")
    shell = first[first.index("-e") + 1]
    assert "-o HostName=198.19.0.1" in shell and "BatchMode=yes" in shell and "StrictHostKeyChecking" not in shell
    assert second[-2].endswith(model_cache.MARKER)
    marker = model_cache.read_marker(model_cache.repo_dir(str(cache), "org/m") / model_cache.MARKER)
    assert marker is not None and marker["origin"] == {"copied_from": "spark1", "address": "198.19.0.1"}
    assert model_cache.copy_missing([task], rsync, check=False)[0]["changed"] is False and len(calls) == 2


def test_a_failed_copy_names_the_head_the_fabric_address_and_leaves_no_marker(tmp_path: Path) -> None:
    task = {"service": "a", "model": "org/m", "cache": str(tmp_path), "action": "copy", "from_node": "spark1",
            "from_address": "198.19.0.1"}
    failing = Recorder({"rsync": (255, "", "ssh: connect to host 198.19.0.1 port 22: No route to host")})
    with pytest.raises(model_cache.ModelError, match=r"from spark1 over the fabric \(198\.19\.0\.1\) failed .*"
                                                     r"No route to host.*verify-link"):
        model_cache.copy_missing([task], failing, check=False)
    assert model_cache.read_marker(model_cache.repo_dir(str(tmp_path), "org/m") / model_cache.MARKER) is None
    assert model_cache.copy_missing([task], failing, check=True)[0]["result"].startswith("would copy")


def test_pull_layers_count_each_layers_last_status() -> None:
    log = ("1.0: Pulling from x\naaaaaaaaaaaa: Pulling fs layer\nbbbbbbbbbbbb: Already exists\n"
           "aaaaaaaaaaaa: Download complete\ncccccccccccc: Waiting\naaaaaaaaaaaa: Pull complete\n")
    assert image_pulls.layers(log) == (2, 3)


def test_pulls_start_in_their_own_transient_units_and_only_for_missing_images(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_pulls, "LOG_DIR", tmp_path)
    run = Recorder({"inspect have:1": (0, "", ""), "inspect": (1, "", "No such image"),
                    "--property=ActiveState": (0, "inactive\n", "")})
    pulls = image_pulls.start_missing(run, "/usr/bin/docker", ["have:1", "new:2"], check=False)
    assert [p.state for p in pulls] == ["present", "missing"]
    (started,) = [c for c in run.calls if c[0] == "systemd-run"]
    assert started[-3:] == ["/usr/bin/docker", "pull", "new:2"]
    assert f"--unit={image_pulls.unit_of('new:2')}" in started
    assert image_pulls.progress(pulls) == "1/2 images: new:2: missing"


def test_a_running_pull_reports_its_layers_and_a_failed_one_its_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_pulls, "LOG_DIR", tmp_path)
    image_pulls.log_of("new:2").write_text("aaaaaaaaaaaa: Pull complete\nbbbbbbbbbbbb: Waiting\n", encoding="utf-8")
    running = Recorder({"inspect": (1, "", ""), "--property=ActiveState": (0, "active\n", "")})
    assert image_pulls.look(running, "docker", "new:2").line() == "new:2: pulling 1/2 layers"
    image_pulls.log_of("new:2").write_text("Error response from daemon: manifest unknown\n", encoding="utf-8")
    ended = Recorder({"inspect": (1, "", ""), "--property=ActiveState": (0, "failed\n", "")})
    failed = image_pulls.look(ended, "docker", "new:2")
    assert failed.state == "failed" and "manifest unknown" in failed.detail


def test_a_retried_tasks_progress_is_shown_per_node() -> None:
    event = parse_event({"event": "runner_retry", "event_data": {
        "host": "spark2", "task": "Wait for the image pulls before any unit (re)starts",
        "res": {"progress": "1/2 images: new:2: pulling 1/4 layers", "attempts": 1}}})
    assert event == HostProgress("spark2", "Wait for the image pulls before any unit (re)starts",
                                 "1/2 images: new:2: pulling 1/4 layers")
    assert parse_event({"event": "runner_retry", "event_data": {"host": "spark2", "res": {}}}) is None
    console = Console(record=True, force_terminal=False, width=200)
    progress = Progress(["spark1", "spark2"], console)
    progress.update(event)
    progress.update(event)  # the same word again is not printed twice
    assert console.export_text().splitlines() == ["spark2: 1/2 images: new:2: pulling 1/4 layers"]


def _layout(tmp_path: Path, declared: list[str]) -> dict[str, Any]:
    return {"declared": declared, "manifest": {"path": str(tmp_path / "services.json"), "content": "{}\n"},
            "unit_prefix": "sparkctl-svc-", "env_dir": str(tmp_path / "env")}


def test_units_are_written_once_env_files_root_only_and_never_in_the_diff(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_units, "UNIT_DIR", tmp_path)
    unit = {"name": "sparkctl-svc-a.service", "path": str(tmp_path / "sparkctl-svc-a.service"), "content": "[Unit]\n",
            "env_path": str(tmp_path / "env" / "sparkctl-svc-a.env")}
    env = {unit["env_path"]: "HF_TOKEN=secret\n"}
    run = Recorder()
    checked = service_units.write([unit], env, _layout(tmp_path, [unit["path"]]), True, run, check=True)
    assert len(checked.changed) == 3 and not Path(unit["path"]).exists() and run.calls == []
    written = service_units.write([unit], env, _layout(tmp_path, [unit["path"]]), True, run, check=False)
    assert written.changed == checked.changed and run.calls == [["systemctl", "daemon-reload"]]
    assert all("secret" not in d["after"] for d in written.diff)
    assert Path(unit["env_path"]).stat().st_mode & 0o777 == 0o600
    assert Path(unit["env_path"]).parent.stat().st_mode & 0o777 == 0o700
    again = service_units.write([unit], env, _layout(tmp_path, [unit["path"]]), True, run, check=False)
    assert again.changed == [] and again.removed == [] and len(run.calls) == 1  # no reload when nothing changed


def test_a_unit_no_longer_declared_is_stopped_disabled_and_removed_with_its_env_file_and_the_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_units, "UNIT_DIR", tmp_path)
    (tmp_path / "sparkctl-svc-old.service").write_text("[Unit]\n")
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "sparkctl-svc-old.env").write_text("A=1\n")
    (tmp_path / "services.json").write_text("{}\n")
    (tmp_path / "other.service").write_text("[Unit]\n")
    run = Recorder()
    gone = service_units.write([], {}, _layout(tmp_path, []), True, run, check=False)
    assert gone.removed == [str(tmp_path / "sparkctl-svc-old.service"), str(tmp_path / "services.json")]
    assert ["systemctl", "disable", "--now", "sparkctl-svc-old.service"] in run.calls
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["other.service"]
    assert service_units.write([], {}, _layout(tmp_path, []), True, Recorder(), check=False).removed == []


def test_start_restarts_only_units_whose_files_are_newer_than_their_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    units = []
    for name in ("fresh", "changed", "stopped"):
        path = tmp_path / f"sparkctl-svc-{name}.service"
        path.write_text("[Unit]\n")
        units.append({"name": path.name, "path": str(path), "env_path": str(tmp_path / f"{name}.env")})
    os.utime(units[0]["path"], (1, 1))
    started_long_ago = int((time.monotonic() - 5) * 1e6)

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        calls.append(list(argv))
        if argv[1] == "show":
            state = "inactive" if "stopped" in argv[2] else "active"
            return 0, f"ActiveState={state}\nActiveEnterTimestampMonotonic={started_long_ago}\n", ""
        if argv[1] == "is-enabled":
            return 0, "enabled\n" if "fresh" in argv[2] else "disabled\n", ""
        return 0, "", ""

    calls: list[list[str]] = []
    done = service_units.start(units, run, check=False)
    assert done == {"restarted": ["sparkctl-svc-changed.service"], "started": ["sparkctl-svc-stopped.service"],
                    "enabled": ["sparkctl-svc-changed.service", "sparkctl-svc-stopped.service"], "unhealthy": {}}
    assert ["systemctl", "restart", "sparkctl-svc-changed.service"] in calls
    assert ["systemctl", "start", "sparkctl-svc-stopped.service"] in calls
    would = service_units.start(units, run, check=True, written=[units[0]["path"]])  # check mode: only told
    assert would["restarted"] == ["sparkctl-svc-fresh.service", "sparkctl-svc-changed.service"]


def test_start_restarts_a_running_unit_that_is_unhealthy_but_not_one_still_starting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A vLLM whose engine died is restarted at once; another unhealthy service only once it has run longer
    than its start timeout (before that it may still be loading its model); a healthy one is left alone."""
    units, instances = [], []
    for name, kind, seen in (("dead", "vllm", "/health answered 503 (engine dead)"), ("loading", "ollama", "no answer"),
                             ("stuck", "tts", "no answer"), ("fine", "vllm", "")):
        path = tmp_path / f"sparkctl-svc-{name}.service"
        path.write_text("[Unit]\n")
        os.utime(path, (1, 1))
        units.append({"name": path.name, "path": str(path), "env_path": str(tmp_path / f"{name}.env")})
        instances.append({"unit": path.name, "kind": kind, "check_url": f"http://{name}", "seen": seen,
                          "timeout_s": 600 if name == "loading" else 60})
    monkeypatch.setattr(service_units.health, "probe", lambda i: (not i["seen"], i["seen"] or "serving"))
    started_long_ago = int((time.monotonic() - 120) * 1e6)

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        if argv[1] == "show":
            return 0, f"ActiveState=active\nActiveEnterTimestampMonotonic={started_long_ago}\n", ""
        return 0, "enabled\n", ""

    done = service_units.start(units, run, check=True, instances=instances)
    assert done["restarted"] == ["sparkctl-svc-dead.service", "sparkctl-svc-stuck.service"]
    assert done["unhealthy"]["sparkctl-svc-dead.service"] == "/health answered 503 (engine dead)"
    assert done["unhealthy"]["sparkctl-svc-stuck.service"].startswith("no answer, 12")


def test_the_docker_stand_in_runs_only_the_images_download_tool_as_an_entrypoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from sparkctl.lab.standins import docker

    monkeypatch.setenv("STANDIN_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("STANDIN_PULL_SECONDS", "0")
    assert docker.main(["run", "--rm", "--entrypoint", "hf", "img/x:1", "download", "org/m"]) == 125
    assert "docker pull img/x:1' first" in capsys.readouterr().err
    assert docker.main(["pull", "-q", "img/x:1"]) == 0
    assert docker.main(["run", "--rm", "--entrypoint", "bash", "img/x:1", "-c", "true"]) == 125
    assert "knows only these entrypoints: hf" in capsys.readouterr().err
