"""What the last verify-link run measured on each cable, saved per inventory, and the figures `sparkctl
advise` prices TP and PP traffic with: those of the slowest saved cable, or the 200 GbE nominal when
none was saved.

verify-link measures every cable from the nodes (iperf3 throughput of both halves at once, the round
trip of its loss pings). It saves them under the state directory, one file per inventory, because the
inventory directory itself is read by Ansible (a JSON file there would be parsed as inventory).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkctl.verify.expectations import NCCL_MIN_BUSBW_GBS

STATE_ENV = "SPARKCTL_STATE_DIR"
NOMINAL_GBYTES_S = NCCL_MIN_BUSBW_GBS[2]
"""What NCCL moves over one 200 GbE cable between two Sparks: NVIDIA's two-node pass mark (GB/s)."""
NOMINAL_RTT_S = 20e-6
"""Round trip of a direct 200 GbE cable as ping reports it (kernel to kernel); assumed, not measured."""


@dataclass(frozen=True)
class LinkFigures:
    """The slowest cable of the cluster: what every TP all-reduce and PP hand-off waits for."""

    gbytes_per_s: float
    rtt_s: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"gbytes_per_s": round(self.gbytes_per_s, 3), "rtt_us": round(self.rtt_s * 1e6, 1),
                "source": self.source}


NOMINAL = LinkFigures(NOMINAL_GBYTES_S, NOMINAL_RTT_S, "nominal 200 GbE (no verify-link run saved)")


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """SPARKCTL_STATE_DIR, else $XDG_STATE_HOME/sparkctl, else ~/.local/state/sparkctl."""
    env = os.environ if env is None else env
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    base = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else Path.home() / ".local" / "state"
    return base / "sparkctl"


def figures_path(inventory: Path, env: Mapping[str, str] | None = None) -> Path:
    """`<state>/link-figures/<readable name>-<hash of the inventory's full path>.json`."""
    resolved = str(inventory.resolve())
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", resolved).strip("-")[-60:] or "inventory"
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:12]
    return state_dir(env) / "link-figures" / f"{readable}-{digest}.json"


def save(inventory: Path, cables: list[dict[str, Any]], env: Mapping[str, str] | None = None) -> Path | None:
    """Write the measured cables (written whole, then renamed, so a reader never sees half a file).
    Returns None, and saves nothing, when no cable was measured."""
    measured = [c for c in cables if c.get("gbps")]
    if not measured:
        return None
    path = figures_path(inventory, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"inventory": str(inventory.resolve()), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cables": measured}
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    scratch.replace(path)
    return path


def load(inventory: Path | None, env: Mapping[str, str] | None = None) -> LinkFigures:
    """The slowest saved cable of this inventory's cluster, or NOMINAL."""
    if inventory is None:
        return NOMINAL
    path = figures_path(inventory, env)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        cables = [c for c in body["cables"] if float(c["gbps"]) > 0]
        gbps = min(float(c["gbps"]) for c in cables)
        rtts = [float(c["rtt_ms"]) / 1e3 for c in cables if c.get("rtt_ms")]
    except (OSError, ValueError, KeyError, TypeError):
        return NOMINAL
    names = ", ".join(str(c.get("cable", "?")) for c in cables)
    return LinkFigures(gbps / 8, max(rtts) if rtts else NOMINAL_RTT_S,
                       f"verify-link {body.get('saved_at', '?')} ({names}; {path})")
