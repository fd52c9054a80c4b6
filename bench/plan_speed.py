"""How fast `sparkctl plan` answers for a 64-node switch cluster, and how fast `sparkctl --help` is.

Target: the 64-node plan prints in under a second. Figures are wall-clock times of the real CLI
(median of several runs), and the ratio of plan to a bare `python -c pass` start in the same run,
which says how much of the time is sparkctl's own on this noisy machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

RUNS = 5


def timed(argv: list[str]) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inv = Path(tmp)
        hosts = {f"spark{i}": {"ansible_host": f"172.31.{i // 200}.{i % 200 + 1}"} for i in range(1, 65)}
        (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"sparks": {"hosts": hosts}}}}))
        (inv / "group_vars").mkdir()
        (inv / "group_vars" / "sparks.yml").write_text(yaml.safe_dump({
            "sparkctl_topology": "switch", "sparkctl_switch_ports": ["p0", "p1"]}))
        cli = [sys.executable, "-m", "sparkctl"]
        bare = timed([sys.executable, "-c", "pass"])
        help_time = timed([*cli, "--help"])
        plan_human = timed([*cli, "plan", "-i", str(inv)])
        plan_json = timed([*cli, "plan", "-i", str(inv), "--json"])
    print(f"python start-up              {bare * 1000:7.0f} ms")
    print(f"sparkctl --help              {help_time * 1000:7.0f} ms")
    print(f"plan, 64-node switch         {plan_human * 1000:7.0f} ms  (target < 1000 ms)"
          f"  {'OK' if plan_human < 1 else 'SLOW'}")
    print(f"plan --json, 64-node switch  {plan_json * 1000:7.0f} ms  (target < 1000 ms)"
          f"  {'OK' if plan_json < 1 else 'SLOW'}")
    print(f"ratio plan / python start-up {plan_human / bare:7.1f}")


if __name__ == "__main__":
    main()
