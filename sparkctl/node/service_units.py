"""A node's service units: written in one go, and (re)started where what they run changed.

Every env file, unit and the manifest is written atomically only where its content or mode differs;
units no longer declared are stopped, disabled and removed with their env files (and the manifest
when no service is left); systemd reloads once if a unit file changed. Starting is a second step,
after the models are in place: a unit is restarted when its unit or env file is newer than the
moment it last started, so a change is applied even when an earlier run stopped between writing and
restarting; every unit is then enabled and started, which heals one stopped behind sparkctl's back.
A unit that runs but is no longer healthy is restarted too: a vLLM whose engine died (its /health
answers 503 while the process lives on), or any service still unhealthy after its start timeout.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import health
from .files import write_atomically
from .networkd import Runner

UNIT_DIR = Path("/etc/systemd/system")


@dataclass
class Written:
    """What writing a node's files changed."""

    changed: list[str] = field(default_factory=list)
    """Paths written (or that would be, in check mode)."""
    removed: list[str] = field(default_factory=list)
    diff: list[dict[str, str]] = field(default_factory=list)


def _differs(path: Path, text: str, mode: int) -> tuple[bool, str]:
    try:
        before = path.read_text(encoding="utf-8")
        stat = path.stat()
    except (OSError, UnicodeDecodeError):
        return True, ""
    return before != text or (stat.st_mode & 0o7777) != mode or stat.st_uid != 0, before


def _put(path: Path, text: str, mode: int, secret: bool, check: bool, out: Written) -> None:
    differs, before = _differs(path, text, mode)
    if not differs:
        return
    out.changed.append(str(path))
    if not secret:
        out.diff.append({"before_header": str(path), "after_header": str(path), "before": before, "after": text})
    if not check:
        write_atomically(path, text, mode=mode, dir_mode=0o700 if secret else 0o755)


def write(units: Sequence[Mapping[str, Any]], env_files: Mapping[str, str], layout: Mapping[str, Any], prune: bool,
          run: Runner, check: bool) -> Written:
    """Write `units` (the run's chosen ones), their env files and the manifest; with `prune`, remove the units
    of sparkctl's prefix that the node no longer declares. `layout` holds `declared` (every unit path the node
    runs), `manifest` (path, content), `unit_prefix` and `env_dir`."""
    out = Written()
    for unit in units:
        _put(Path(unit["env_path"]), env_files[unit["env_path"]], 0o600, True, check, out)
        _put(Path(unit["path"]), unit["content"], 0o644, False, check, out)
    declared = set(layout["declared"])
    stale = sorted(str(p) for p in UNIT_DIR.glob(f"{layout['unit_prefix']}*.service")
                   if str(p) not in declared) if prune else []
    manifest = layout["manifest"]
    if declared:
        _put(Path(manifest["path"]), manifest["content"], 0o644, False, check, out)
    elif prune and Path(manifest["path"]).exists():
        stale.append(manifest["path"])
    for path in stale:
        out.removed.append(path)
        if check:
            continue
        if path.endswith(".service"):
            name = os.path.basename(path)
            run(["systemctl", "disable", "--now", name])
            Path(layout["env_dir"], name.removesuffix(".service") + ".env").unlink(missing_ok=True)
        Path(path).unlink(missing_ok=True)
    if not check and any(p.endswith(".service") for p in out.changed + out.removed):
        rc, _, err = run(["systemctl", "daemon-reload"])
        if rc != 0:
            raise RuntimeError(f"systemctl daemon-reload failed: {err.strip()}")
    return out


def _started_at(run: Runner, unit: str) -> tuple[str, float]:
    """The unit's active state and when it last became active (seconds since the epoch; 0 if never)."""
    _, out, _ = run(["systemctl", "show", unit, "--property=ActiveState,ActiveEnterTimestampMonotonic"])
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    monotonic = int(values.get("ActiveEnterTimestampMonotonic", "0") or 0) / 1e6
    since = time.time() - time.monotonic() + monotonic if monotonic else 0.0
    return values.get("ActiveState", "unknown"), since


def unhealthy(instances: Sequence[Mapping[str, Any]], since: float) -> str | None:
    """Why a running unit serving `instances` needs a restart, or None: a vLLM engine that died, or a
    service not healthy although it has run longer than its start timeout (a slow start is left alone)."""
    for instance in instances:
        if not instance.get("check_url"):
            continue  # a headless rank: its head's health speaks for it
        healthy, detail = health.probe(instance)
        if healthy:
            continue
        if instance["kind"] == "vllm" and detail.endswith("(engine dead)"):
            return detail
        if time.time() - since > float(instance["timeout_s"]):
            return f"{detail}, {time.time() - since:.0f} s after it started"
    return None


def start(units: Sequence[Mapping[str, Any]], run: Runner, check: bool, written: Sequence[str] = (),
          instances: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Restart each active unit whose files are newer than its start (or among `written`, the files the
    write step changed, which in check mode it only would have) or that runs unhealthy (`instances`, the
    node's manifest), start the others, enable all.

    Returns the units `restarted` and `started` (or that would be, in check mode), `enabled`, and
    `unhealthy` (unit -> why it was restarted).
    """
    result: dict[str, Any] = {"restarted": [], "started": [], "enabled": [], "unhealthy": {}}
    for unit in units:
        name = str(unit["name"])
        state, since = _started_at(run, name)
        newest = max((Path(p).stat().st_mtime for p in (unit["path"], unit["env_path"]) if Path(p).exists()),
                     default=0.0)
        if state in ("active", "activating", "reloading"):
            if newest > since or {unit["path"], unit["env_path"]} & set(written):
                result["restarted"].append(name)
            elif state == "active" and (why := unhealthy([i for i in instances if i["unit"] == name], since)):
                result["restarted"].append(name)
                result["unhealthy"][name] = why
        else:
            result["started"].append(name)
        _, enabled, _ = run(["systemctl", "is-enabled", name])
        if enabled.strip() != "enabled":
            result["enabled"].append(name)
    if check:
        return result
    if result["enabled"]:
        run(["systemctl", "enable", *result["enabled"]])
    for verb in ("restarted", "started"):
        if result[verb]:
            rc, _, err = run(["systemctl", "restart" if verb == "restarted" else "start", *result[verb]])
            if rc != 0:
                raise RuntimeError(f"systemctl could not {verb[:-2]} {', '.join(result[verb])}: {err.strip()}")
    return result
