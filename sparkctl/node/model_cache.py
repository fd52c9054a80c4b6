"""A node's model cache: a model is fetched once, on the head of its service, and copied from there.

The cache is the Hugging Face hub cache the vLLM containers mount (`hub/models--ORG--NAME/` with
`refs/main`, `snapshots/REV/` and `blobs/`). A model counts as present only when sparkctl's marker
`.sparkctl-complete.json` sits in its directory and every file the marker lists is there with the
listed size: a fetch or a copy that stopped half way leaves no marker, so the next deploy finishes
it; nothing that already has the model downloads or receives it again.

The head fetches with the image's own tooling (`hf download`, run in the service's image, which
reads the service's env file for a token). A worker receives the model from the head with rsync over
SSH to the head's fabric address on the cable between them, through the cluster key and known_hosts
the SSH mesh set up (the head is named by its inventory name, so its host key is checked; only the
address is the fabric's). The marker is copied last and checked against the files received.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .files import write_atomically

Runner = Callable[[Sequence[str]], tuple[int, str, str]]
MARKER = ".sparkctl-complete.json"
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


def fetch(task: Mapping[str, Any], run: Runner) -> str:
    """Download the model on this node with the image's own CLI; returns what was done."""
    model = str(task["model"])
    repo = repo_dir(str(task["cache"]), model)
    (repo / MARKER).unlink(missing_ok=True)
    rc, out, err = run(list(task["argv"]))
    if rc != 0:
        raise ModelError(f"fetching {model} failed (exit {rc}): {(err or out).strip()[-600:]}")
    write_marker(repo, model, {"fetched_with": " ".join(task["argv"][-3:])})
    return f"fetched {model}"


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


def ensure(tasks: Sequence[Mapping[str, Any]], action: str, run: Runner, check: bool) -> list[dict[str, Any]]:
    """Fetch (or copy) each model of `tasks` with that action that this node lacks, each model once.

    Returns one record per model: `model`, `result` (present, fetched..., copied..., would ...), `changed`.
    """
    done: dict[str, dict[str, Any]] = {}
    for task in tasks:
        model = str(task["model"])
        if task["action"] != action or model in done:
            continue
        lacking = missing(repo_dir(str(task["cache"]), model), model)
        if lacking is None:
            done[model] = {"model": model, "result": "present", "changed": False}
        elif check:
            done[model] = {"model": model, "result": f"would {action} ({lacking})", "changed": True}
        else:
            result = fetch(task, run) if action == "fetch" else copy(task, run)
            done[model] = {"model": model, "result": result, "changed": True}
    return list(done.values())
