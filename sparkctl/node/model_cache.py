"""A node's model cache: a model is fetched once, on the head of its service, and copied from there.

The cache is the Hugging Face hub cache the vLLM containers mount (`hub/models--ORG--NAME/` with
`refs/main`, `snapshots/REV/` and `blobs/`). A model counts as present only when sparkctl's marker
`.sparkctl-complete.json` sits in its directory and every file the marker lists is there with the
listed size: a fetch or a copy that stopped half way leaves no marker, so the next deploy finishes
it; nothing that already has the model downloads or receives it again.

The head fetches with the image's own tooling (`hf download`, run in the service's image, which
reads the service's env file for a token), in a transient systemd unit as image pulls do, so the
deploy can show how far it is and a dropped connection does not stop it. A worker receives the model from the head with rsync over
SSH to the head's fabric address on the cable between them, through the cluster key and known_hosts
the SSH mesh set up (the head is named by its inventory name, so its host key is checked; only the
address is the fabric's). The marker is copied last and checked against the files received.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .files import write_atomically
from .networkd import Runner

MARKER = ".sparkctl-complete.json"
FETCH_LOGS = Path("/run/sparkctl/fetches")
FETCH_UNIT_PREFIX = "sparkctl-fetch-"
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5",
               "-o", "ServerAliveCountMax=6")


class ModelError(Exception):
    """A model could not be fetched or copied; the message says which, from where and why."""


def repo_dir(cache: str, model: str) -> Path:
    """Where the hub cache keeps `model` (`google/gemma` -> hub/models--google--gemma)."""
    return Path(cache) / "hub" / ("models--" + model.replace("/", "--"))


def snapshot_files(repo: Path) -> tuple[str, dict[str, int]]:
    """The revision `refs/main` names and every file of its snapshot with its size (links followed)."""
    try:
        revision = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        return "", {}
    snapshot = repo / "snapshots" / revision
    files: dict[str, int] = {}
    for root, _, names in os.walk(snapshot):
        for name in names:
            path = Path(root, name)
            try:
                files[str(path.relative_to(snapshot))] = path.stat().st_size
            except OSError:  # a dangling link: the blob is missing
                files[str(path.relative_to(snapshot))] = -1
    return revision, files


def read_marker(path: Path) -> dict[str, Any] | None:
    """A marker file's content; None when it is missing or not a marker."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def missing(repo: Path, model: str, marker: Mapping[str, Any] | None = None) -> str | None:
    """None when the cache holds all of `model` as its marker lists it, else what is missing."""
    marker = read_marker(repo / MARKER) if marker is None else marker
    if marker is None:
        return f"no complete copy of {model} (no {MARKER})"
    if marker.get("model") != model or not isinstance(marker.get("files"), dict):
        return f"{repo / MARKER} does not describe {model}"
    revision, have = snapshot_files(repo)
    if revision != marker.get("revision"):
        return f"revision {revision or 'none'} is not the marked {marker.get('revision')}"
    for name, size in marker["files"].items():
        if have.get(name) != size:
            return f"{name} is {'missing' if name not in have else f'{have[name]} bytes, not {size}'}"
    return None


def write_marker(repo: Path, model: str, origin: Mapping[str, str]) -> dict[str, Any]:
    """Mark the snapshot now in `repo` complete, listing its files; `origin` says where it came from."""
    revision, files = snapshot_files(repo)
    if not revision or not files or any(size < 0 for size in files.values()):
        raise ModelError(f"{model}: the cache has no complete snapshot in {repo} (refs/main, snapshots/)")
    marker = {"model": model, "revision": revision, "files": files, "origin": dict(origin)}
    write_atomically(repo / MARKER, json.dumps(marker, indent=2, sort_keys=True) + "\n", mode=0o644, dir_mode=0o755)
    return marker


def _unit(model: str) -> str:
    return f"{FETCH_UNIT_PREFIX}{hashlib.sha256(model.encode()).hexdigest()[:16]}.service"


def _log(model: str) -> Path:
    return FETCH_LOGS / _unit(model).replace(".service", ".log")


def _fetching(run: Runner, model: str) -> str:
    """The fetch unit's state: active (running), failed, or '' when there is none (never run, or ended well:
    systemd drops a transient unit that succeeded)."""
    _, out, _ = run(["systemctl", "show", _unit(model), "--property=ActiveState", "--value"])
    state = out.strip()
    return "active" if state in ("active", "activating", "deactivating") else "failed" if state == "failed" else ""


def _size(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())


def start_fetch(task: Mapping[str, Any], run: Runner) -> None:
    """Start downloading the model with the image's own CLI in a transient unit of its own (it goes on
    if the SSH connection drops; a second deploy finds it running), output to its log."""
    model = str(task["model"])
    (repo_dir(str(task["cache"]), model) / MARKER).unlink(missing_ok=True)
    FETCH_LOGS.mkdir(parents=True, exist_ok=True)
    run(["systemctl", "reset-failed", _unit(model)])  # a failed earlier fetch leaves its unit behind
    rc, out, err = run(["systemd-run", f"--unit={_unit(model)}", f"--description=sparkctl: download {model}",
                        f"--property=StandardOutput=truncate:{_log(model)}", "--property=StandardError=inherit",
                        "--quiet", "--", *task["argv"]])
    if rc != 0:
        raise ModelError(f"could not start fetching {model}: {(err or out).strip()}")


def fetch_state(task: Mapping[str, Any], run: Runner) -> dict[str, Any]:
    """Where a model's download stands: present, fetching (with the bytes so far), fetched (just now, marked
    complete) or failed (with the end of its output)."""
    model = str(task["model"])
    repo = repo_dir(str(task["cache"]), model)
    if missing(repo, model) is None:
        return {"model": model, "state": "present", "detail": ""}
    unit = _fetching(run, model)
    if unit == "active":
        return {"model": model, "state": "fetching", "detail": f"{_size(repo) / 1e9:.2f} GB so far"}
    try:
        tail = " | ".join(_log(model).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:])
    except OSError:
        tail = ""
    if unit == "failed":
        return {"model": model, "state": "failed", "detail": tail or "the download failed"}
    try:
        write_marker(repo, model, {"fetched_with": " ".join(task["argv"][-3:])})
    except ModelError as exc:
        return {"model": model, "state": "failed", "detail": f"{exc}" + (f"; it said: {tail}" if tail else "")}
    return {"model": model, "state": "fetched", "detail": ""}


def copy(task: Mapping[str, Any], run: Runner) -> str:
    """Receive the model from its head over the fabric; returns what was done."""
    model = str(task["model"])
    repo = repo_dir(str(task["cache"]), model)
    head, address = str(task["from_node"]), str(task["from_address"])
    shell = " ".join(["ssh", *SSH_OPTIONS, "-o", f"HostName={address}"])
    source = f"{head}:{repo}/"
    repo.mkdir(parents=True, exist_ok=True)
    (repo / MARKER).unlink(missing_ok=True)
    staged = repo / f"{MARKER}.incoming"
    for argv in (["rsync", "-a", "--delete", "--exclude", MARKER, "--exclude", staged.name, "-e", shell,
                  source, f"{repo}/"],
                 ["rsync", "-a", "-e", shell, f"{head}:{repo / MARKER}", str(staged)]):
        rc, out, err = run(argv)
        if rc != 0:
            raise ModelError(f"copying {model} from {head} over the fabric ({address}) failed (rsync exit {rc}): "
                             f"{(err or out).strip()[-600:]}; check the cable (sparkctl verify-link) and the SSH "
                             "mesh (sparkctl provision sets it up)")
    received = read_marker(staged)
    problem = missing(repo, model, received or {})
    if received is None or problem:
        staged.unlink(missing_ok=True)
        raise ModelError(f"{model} copied from {head} is incomplete: {problem or 'its marker is unreadable'}")
    staged.unlink()
    write_marker(repo, model, {"copied_from": head, "address": address})
    return f"copied {model} from {head} over the fabric ({address})"


def _each_model(tasks: Sequence[Mapping[str, Any]], action: str) -> list[Mapping[str, Any]]:
    """The tasks of `action`, one per model (two services of one model on a node fetch it once)."""
    seen: dict[str, Mapping[str, Any]] = {}
    for task in tasks:
        if task["action"] == action:
            seen.setdefault(str(task["model"]), task)
    return list(seen.values())


def _get_missing(tasks: Sequence[Mapping[str, Any]], action: str, check: bool,
                 get: Callable[[Mapping[str, Any]], str]) -> list[dict[str, Any]]:
    """One record per model of `action` (fetch or copy): present, what check mode would do, or what `get`
    did to get the model this node lacks."""
    records = []
    for task in _each_model(tasks, action):
        model = str(task["model"])
        lacking = missing(repo_dir(str(task["cache"]), model), model)
        if lacking is None:
            records.append({"model": model, "result": "present", "changed": False})
        elif check:
            records.append({"model": model, "result": f"would {action} ({lacking})", "changed": True})
        else:
            records.append({"model": model, "result": get(task), "changed": True})
    return records


def start_fetches(tasks: Sequence[Mapping[str, Any]], run: Runner, check: bool) -> list[dict[str, Any]]:
    """Start a download of every model this node is head for and lacks (unless one already runs)."""
    def fetch(task: Mapping[str, Any]) -> str:
        if _fetching(run, str(task["model"])) == "active":
            return "already fetching"
        start_fetch(task, run)
        return "fetching"
    return _get_missing(tasks, "fetch", check, fetch)


def fetch_progress(tasks: Sequence[Mapping[str, Any]], run: Runner) -> tuple[bool, str, list[dict[str, Any]]]:
    """(done, one line for the user, each model's state) of the downloads `start_fetches` began."""
    states = [fetch_state(task, run) for task in _each_model(tasks, "fetch")]
    ready = sum(1 for s in states if s["state"] in ("present", "fetched"))
    rest = [f"{s['model']}: {s['state']}" + (f" ({s['detail']})" if s["detail"] else "")
            for s in states if s["state"] not in ("present", "fetched")]
    line = f"{ready}/{len(states)} models" + (": " + "; ".join(rest) if rest else "")
    return all(s["state"] != "fetching" for s in states), line, states


def copy_missing(tasks: Sequence[Mapping[str, Any]], run: Runner, check: bool) -> list[dict[str, Any]]:
    """Receive from its head every model of a service across Sparks that this node lacks."""
    return _get_missing(tasks, "copy", check, lambda task: copy(task, run))
