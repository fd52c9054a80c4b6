"""How long `sparkctl lab up` and `sparkctl lab down` take for 2 and 8 nodes, measured for real.

Run as root: `.venv/bin/python bench/lab_updown.py [--rounds N]`. Each lab gets a throwaway
SPARKCTL_LAB_ROOT and its own name, and is always taken down, also when up fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = ((2, "direct"), (8, "ring"))
SPARKCTL = str(Path(sys.executable).with_name("sparkctl"))


def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return time.perf_counter() - start


def measure(nodes: int, topology: str, root: Path, round_: int) -> tuple[float, float]:
    """(up seconds, down seconds) of one lab."""
    env = {**os.environ, "SPARKCTL_LAB_ROOT": str(root)}
    name = f"bench{nodes}r{round_}"
    try:
        argv = [SPARKCTL, "lab", "up", "--name", name, "--nodes", str(nodes), "--topology", topology]
        up = _timed(argv, env)
    finally:
        down = _timed([SPARKCTL, "lab", "down", "--name", name], env)
    return up, down


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="labs per size (median reported)")
    rounds = parser.parse_args().rounds
    if os.geteuid() != 0:
        print("bench/lab_updown.py needs root (it builds labs)", file=sys.stderr)
        return 2
    print(f"{'nodes':>5} {'topology':<8} {'up s (median)':>14} {'down s (median)':>16}  rounds")
    with tempfile.TemporaryDirectory(prefix="sparkctl-lab-bench-") as tmp:
        for nodes, topology in SIZES:
            samples = [measure(nodes, topology, Path(tmp), r) for r in range(rounds)]
            ups, downs = zip(*samples, strict=True)
            print(
                f"{nodes:>5} {topology:<8} {statistics.median(ups):>14.2f} {statistics.median(downs):>16.2f}"
                f"  {', '.join(f'{u:.2f}/{d:.2f}' for u, d in samples)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
