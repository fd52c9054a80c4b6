"""Image pulls on a node: every missing image pulled at once, in the background, with progress to read.

A deploy starts the pulls on every Spark in one task, then waits for them in another that Ansible
retries: each pull is a transient systemd unit (`systemd-run`), so it runs on after the module
returns, survives a dropped SSH connection, and a second deploy finds it still running instead of
starting another. Its output goes to a log under /run/sparkctl/pulls, from which the wait reads how
many layers are done: what `docker pull` prints without a terminal is one line per layer change.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .networkd import Runner

LOG_DIR = Path("/run/sparkctl/pulls")
UNIT_PREFIX = "sparkctl-pull-"
_LAYER = re.compile(r"^([0-9a-f]{12}): (.+)$", re.MULTILINE)
_LAYER_DONE = ("Pull complete", "Already exists")


@dataclass(frozen=True)
class Pull:
    """Where one image stands on this node."""

    image: str
    state: str
    """present, pulling, failed or missing (not started)."""
    layers_done: int = 0
    layers: int = 0
    detail: str = ""

    def line(self) -> str:
        if self.state == "pulling":
            counted = f" {self.layers_done}/{self.layers} layers" if self.layers else ""
            return f"{self.image}: pulling{counted}"
        return f"{self.image}: {self.state}" + (f" ({self.detail})" if self.detail else "")


def unit_of(image: str) -> str:
    return f"{UNIT_PREFIX}{hashlib.sha256(image.encode()).hexdigest()[:16]}.service"


def log_of(image: str) -> Path:
    return LOG_DIR / unit_of(image).replace(".service", ".log")


def layers(log: str) -> tuple[int, int]:
    """(layers done, layers seen) in `docker pull` output: the last status of each layer counts."""
    last: dict[str, str] = {}
    for layer, status in _LAYER.findall(log):
        last[layer] = status
    return sum(1 for s in last.values() if s.startswith(_LAYER_DONE)), len(last)


def _active(run: Runner, unit: str) -> bool:
    rc, out, _ = run(["systemctl", "show", unit, "--property=ActiveState", "--value"])
    return rc == 0 and out.strip() in ("active", "activating", "deactivating", "reloading")


def look(run: Runner, cli: str, image: str) -> Pull:
    """Where `image` stands: in the engine, being pulled (with its layers), failed (with the log's end) or missing."""
    # The unit is asked before the engine: a pull that ends in between then counts as present, never as a
    # pull that ended without its image.
    pulling = _active(run, unit_of(image))
    rc, _, _ = run([cli, "image", "inspect", image])
    if rc == 0:
        return Pull(image, "present")
    try:
        log = log_of(image).read_text(encoding="utf-8", errors="replace")
    except OSError:
        log = None
    if pulling:
        done, seen = layers(log or "")
        return Pull(image, "pulling", done, seen)
    if log is None:
        return Pull(image, "missing")
    tail = " | ".join(line for line in log.strip().splitlines()[-3:])
    return Pull(image, "failed", detail=tail or "the pull ended without the image")


def start(run: Runner, cli: str, image: str) -> None:
    """Start pulling `image` in a transient unit of its own, output to its log."""
    unit = unit_of(image)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    run(["systemctl", "reset-failed", unit])  # a failed earlier pull leaves its unit behind
    rc, out, err = run(["systemd-run", f"--unit={unit}", f"--description=sparkctl: docker pull {image}",
                        f"--property=StandardOutput=truncate:{log_of(image)}", "--property=StandardError=inherit",
                        "--quiet", "--", cli, "pull", image])
    if rc != 0:
        raise RuntimeError(f"could not start pulling {image}: {(err or out).strip()}")


def start_missing(run: Runner, cli: str, images: Sequence[str], check: bool) -> list[Pull]:
    """Start a pull for each image that is neither in the engine nor being pulled; returns them all."""
    pulls = [look(run, cli, image) for image in images]
    if not check:
        for pull in pulls:
            if pull.state in ("missing", "failed"):
                start(run, cli, pull.image)
    return pulls


def progress(pulls: Sequence[Pull]) -> str:
    """One line for the user: how many images are in, and each one still coming."""
    ready = sum(1 for p in pulls if p.state == "present")
    rest = [p.line() for p in pulls if p.state != "present"]
    return f"{ready}/{len(pulls)} images" + (": " + "; ".join(rest) if rest else "")
