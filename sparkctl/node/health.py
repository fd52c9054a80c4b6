"""Is a service up: its unit's state and its own API's answer, checked on the node it runs on.

One implementation for `sparkctl deploy` (which waits until every service answers, through the
`sparkctl_services_ready` module) and `sparkctl status` (which sends this file to each node over
SSH and runs it with `python3 - MANIFEST`). Each kind is asked what its real server answers when it is
ready: vLLM `/health`, then `/v1/models` must list the served model; Ollama `/api/tags` must list
the model (deploy pulls it through `/api/pull` first); Orpheus `/v1/audio/voices`; Qwen TTS
`/health`; a container its declared health path, else a TCP connect to its port. A headless rank of
a vLLM service that spans Sparks serves nothing: its unit running is all there is to see.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Run = Callable[[Sequence[str]], tuple[int, str, str]]
HTTP_TIMEOUT_S = 5.0
JOURNAL_LINES = 15


def _get(url: str, timeout: float = HTTP_TIMEOUT_S) -> tuple[int, str]:
    """(status, body) of a GET; status 0 and the reason when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read(1_000_000).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(10_000).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, str(reason)


def _post(url: str, body: Mapping[str, Any], timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read(1_000_000).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(10_000).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(getattr(exc, "reason", exc))


def _names(body: str, field: str, key: str) -> list[str]:
    try:
        data = json.loads(body)
        return [str(item.get(key)) for item in data.get(field, []) if isinstance(item, dict)]
    except (ValueError, AttributeError):
        return []


def _ollama_has(models: list[str], model: str) -> bool:
    wanted = model if ":" in model else f"{model}:latest"
    return wanted in models or model in models


def probe(instance: Mapping[str, Any]) -> tuple[bool, str]:
    """(healthy, what was seen) for one served instance, by its kind's own API."""
    base = str(instance["check_url"])
    kind = instance["kind"]
    if kind == "vllm":
        status, body = _get(base + "/health")
        if status != 200:
            return False, f"/health answered {status or body}" + (" (engine dead)" if status == 503 else "")
        status, body = _get(base + "/v1/models")
        served = _names(body, "data", "id")
        if instance["service"] not in served:
            return False, f"/v1/models lists {served or 'nothing'}, not {instance['service']}"
        return True, f"serving {instance['model']} as {instance['service']}"
    if kind == "ollama":
        status, body = _get(base + "/api/tags")
        if status != 200:
            return False, f"/api/tags answered {status or body}"
        models = _names(body, "models", "name")
        if not _ollama_has(models, str(instance["model"])):
            return False, f"model {instance['model']} is not pulled (has {models or 'none'})"
        return True, f"serving {instance['model']}"
    if kind == "orpheus-tts":
        status, body = _get(base + "/v1/audio/voices")
        return (status == 200, "voices listed" if status == 200 else f"/v1/audio/voices answered {status or body}")
    if kind == "qwen-tts":
        status, body = _get(base + "/health")
        try:
            loaded = status == 200 and json.loads(body).get("status") == "ok"
        except ValueError:
            loaded = False
        return loaded, "model loaded" if loaded else f"/health answered {status or body}"
    path = instance.get("health_path")
    if path:
        status, body = _get(base + str(path))
        return status == 200, f"{path} answered {status or body}"
    parsed = urllib.parse.urlsplit(base)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), timeout=HTTP_TIMEOUT_S):
            return True, f"port {parsed.port} accepts connections"
    except OSError as exc:
        return False, f"port {parsed.port} refuses connections ({exc.strerror or exc})"


def unit_state(run: Run, unit: str) -> dict[str, Any]:
    """systemd's view of a unit: active/sub state, restarts and how long it has been active."""
    keys = ("ActiveState", "SubState", "NRestarts", "ActiveEnterTimestampMonotonic", "LoadState")
    _, out, _ = run(["systemctl", "show", unit, *(f"--property={k}" for k in keys)])
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    entered = int(values.get("ActiveEnterTimestampMonotonic", "0") or 0)
    uptime = max(0.0, time.monotonic() - entered / 1e6) if entered and values.get("ActiveState") == "active" else 0.0
    return {
        "state": values.get("ActiveState", "unknown"),
        "sub_state": values.get("SubState", ""),
        "loaded": values.get("LoadState", "") == "loaded",
        "restarts": int(values.get("NRestarts", "0") or 0),
        "uptime_s": round(uptime, 1),
    }


def journal_tail(run: Run, unit: str, lines: int = JOURNAL_LINES) -> list[str]:
    _, out, _ = run(["journalctl", "--unit", unit, "--lines", str(lines), "--no-pager", "--output", "cat"])
    return out.splitlines()[-lines:]


def verdict(instance: Mapping[str, Any], run: Run) -> dict[str, Any]:
    """Unit state plus health for one instance, as `sparkctl status` reports it."""
    unit = unit_state(run, str(instance["unit"]))
    if unit["state"] != "active":
        healthy, detail = False, f"unit {instance['unit']} is {unit['state']} ({unit['sub_state']})"
    elif instance.get("check_url"):
        healthy, detail = probe(instance)
        if not healthy and instance.get("master"):
            detail += (f"; its ranks meet over the fabric at {instance['master']}: check the cables between its "
                       "Sparks (sparkctl verify-link) and that every rank's unit runs")
    else:
        healthy, detail = True, f"rank {instance['rank']} running (headless: serves no HTTP)"
    return {**{k: instance[k] for k in ("service", "kind", "node", "unit", "rank", "url", "model")},
            **unit, "healthy": healthy, "detail": detail}


def pull_missing_model(instance: Mapping[str, Any], timeout: float) -> str | None:
    """Have an Ollama service pull its model if it lacks it; None when done, else what went wrong."""
    base = str(instance["check_url"])
    status, body = _get(base + "/api/tags")
    if status == 200 and _ollama_has(_names(body, "models", "name"), str(instance["model"])):
        return None
    status, body = _post(base + "/api/pull", {"model": instance["model"], "stream": False}, timeout)
    if status != 200:
        return f"pulling {instance['model']} failed: {status or ''} {body.strip()[:300]}"
    return None


def wait_ready(
    instances: Sequence[Mapping[str, Any]], run: Run, sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """Wait until every instance is healthy or its own timeout passes; one verdict each, with the
    journal's last lines for those that never came up."""
    start = clock()
    pending = {str(i["unit"]): i for i in instances}
    done: dict[str, dict[str, Any]] = {}
    pulled: set[str] = set()
    while pending:
        for unit, instance in list(pending.items()):
            if instance["kind"] == "ollama" and unit not in pulled and unit_state(run, unit)["state"] == "active":
                status, _ = _get(str(instance["check_url"]) + "/")
                if status == 200:
                    problem = pull_missing_model(instance, float(instance["timeout_s"]))
                    pulled.add(unit)
                    if problem:
                        done[unit] = {**verdict(instance, run), "healthy": False, "detail": problem,
                                      "journal": journal_tail(run, unit)}
                        del pending[unit]
                        continue
            result = verdict(instance, run)
            if result["healthy"]:
                done[unit] = result
                del pending[unit]
            elif clock() - start > float(instance["timeout_s"]):
                done[unit] = {**result, "detail": f"not ready after {instance['timeout_s']} s: {result['detail']}",
                              "journal": journal_tail(run, unit)}
                del pending[unit]
        if pending:
            sleep(1.0)
    return [done[str(i["unit"])] for i in instances]


def _run_here(argv: Sequence[str]) -> tuple[int, str, str]:
    import subprocess

    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    return result.returncode, result.stdout, result.stderr


def manifest_instances(path: str) -> list[dict[str, Any]]:
    """The instances the node's services manifest lists (none before the first deploy)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return list(json.load(handle)["instances"])
    except FileNotFoundError:
        return []


def main(argv: Sequence[str]) -> int:
    """`python3 - MANIFEST`: print the verdict of every instance the manifest lists, as JSON."""
    print(json.dumps([verdict(instance, _run_here) for instance in manifest_instances(argv[0])]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
