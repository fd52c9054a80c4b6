"""How often ONE plain re-run of `playbooks/site.yml` reconciles a recabled lab, and how long that run takes.

Each scenario is a cable move and its way back, both reconciled by one re-run each, on one lab provisioned
once per topology: a 3-node ring reversed (every cable moves) and restored, the same ring with two nodes
swapped and restored, a 2-node direct lab recabled p0-p0 -> p1-p1 and back, the same lab given a second
cable and back to one, and a 2-node storage split whose peer and storage cages are swapped and swapped back
(with `sparkctl_storage.port` edited to match, as the owner must). A run counts as a success when
ansible-playbook exits 0: the play itself pings every planned half at full MTU (and every storage target)
before it succeeds, and rolls back otherwise. The success rate should be 100%: recabling is something users
do, and a re-run must converge every time.

Run as root: `.venv/bin/python bench/recabling_stress.py [--runs N] [--scenario ring-reversed|direct-p0-p1]`.
Every lab gets a throwaway SPARKCTL_LAB_ROOT and its own name and is always taken down, also when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPARKCTL = str(BIN / "sparkctl")
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")

Moves = list[tuple[str, ...]]
"""`sparkctl lab` sub-commands, e.g. ("uncable", "spark1:p0") or ("cable", "spark1:p1", "spark2:p0")."""


@dataclass(frozen=True)
class Scenario:
    nodes: int
    topology: str
    there: Moves
    back: Moves
    storage_port: tuple[str, str] | None = None
    """`sparkctl_storage.port` after the move there and after the move back, for a storage split."""


RING_FORWARD: Moves = [("cable", "spark1:p0", "spark2:p1"), ("cable", "spark2:p0", "spark3:p1"),
                ("cable", "spark3:p0", "spark1:p1")]
RING_REVERSED: Moves = [("cable", "spark1:p1", "spark2:p0"), ("cable", "spark2:p1", "spark3:p0"),
                 ("cable", "spark3:p1", "spark1:p0")]
RING_SWAPPED: Moves = [("cable", "spark1:p0", "spark3:p1"), ("cable", "spark3:p0", "spark2:p1"),
                      ("cable", "spark2:p0", "spark1:p1")]
"""spark2 and spark3 trade places in the ring."""
UNCABLE_P0: Moves = [("uncable", f"spark{n}:p0") for n in (1, 2, 3)]
SCENARIOS = {
    "ring-reversed": Scenario(3, "ring",
                              UNCABLE_P0 + RING_REVERSED, UNCABLE_P0 + RING_FORWARD),
    "ring-swapped": Scenario(3, "ring", UNCABLE_P0 + RING_SWAPPED, UNCABLE_P0 + RING_FORWARD),
    "direct-two-cables": Scenario(2, "direct", [("cable", "spark1:p1", "spark2:p1")], [("uncable", "spark1:p1")]),
    "direct-p0-p1": Scenario(2, "direct",
                             [("uncable", "spark1:p0"), ("cable", "spark1:p1", "spark2:p1")],
                             [("uncable", "spark1:p1"), ("cable", "spark1:p0", "spark2:p0")]),
    "storage-swapped": Scenario(2, "storage-split",
                                [("uncable", "spark1:p0"), ("uncable", "spark1:p1"), ("uncable", "spark2:p1"),
                                 ("cable", "spark1:p1", "spark2:p1"), ("cable", "spark1:p0", "storage"),
                                 ("cable", "spark2:p0", "storage")],
                                [("uncable", "spark1:p0"), ("uncable", "spark1:p1"), ("uncable", "spark2:p0"),
                                 ("cable", "spark1:p0", "spark2:p0"), ("cable", "spark1:p1", "storage"),
                                 ("cable", "spark2:p1", "storage")],
                                storage_port=("p0", "p1")),
}


def _set_storage_port(inventory: Path, port: str) -> None:
    """Edit the lab inventory's `sparkctl_storage.port`, as the owner does after moving the cables."""
    path = inventory / "group_vars" / "sparks.yml"
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    values["sparkctl_storage"]["port"] = port
    path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")


def _lab(env: dict[str, str], *args: str) -> str:
    return subprocess.run([SPARKCTL, "lab", *args], env=env, capture_output=True, text=True, check=True).stdout


def _rerun(inventory: Path, env: dict[str, str]) -> tuple[bool, float, str]:
    """(success, seconds, error lines) of one plain ansible-playbook run."""
    start = time.perf_counter()
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory), str(REPO / "playbooks" / "site.yml")],
                            env=env, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    errors = [line for line in result.stdout.splitlines() if "[ERROR]" in line]
    return result.returncode == 0, elapsed, "; ".join(errors)[:300]


def measure(name: str, scenario: Scenario, root: Path, runs: int) -> tuple[int, int, list[float]]:
    """(successes, attempts, seconds of every reconciling run) over `runs` moves there and back."""
    env = {**os.environ, "SPARKCTL_LAB_ROOT": str(root), "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_NOCOLOR": "1"}
    lab = f"bre{scenario.nodes}"
    ok = attempts = 0
    times: list[float] = []
    try:
        inventory = Path(_lab(env, "up", "--name", lab, "--nodes", str(scenario.nodes),
                              "--topology", scenario.topology).strip())
        first, seconds, errors = _rerun(inventory, env)
        if not first:
            raise RuntimeError(f"the first provisioning failed: {errors}")
        print(f"  {name}: provisioned in {seconds:.1f} s", file=sys.stderr)
        for run in range(runs):
            for step, (label, moves) in enumerate((("there", scenario.there), ("back", scenario.back))):
                for move in moves:
                    _lab(env, *move, "--name", lab)
                if scenario.storage_port:
                    _set_storage_port(inventory, scenario.storage_port[step])
                success, seconds, errors = _rerun(inventory, env)
                attempts += 1
                ok += success
                times.append(seconds)
                print(f"  {name} run {run + 1} {label}: {'ok' if success else 'FAILED'} in {seconds:.1f} s"
                      + (f" ({errors})" if errors else ""), file=sys.stderr)
                if not success:  # converge before the next attempt, so each attempt starts clean
                    _rerun(inventory, env)
        return ok, attempts, times
    finally:
        subprocess.run([SPARKCTL, "lab", "down", "--name", lab], env=env, capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="moves there and back per scenario")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append",
                        help="only these scenarios (default: all)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/recabling_stress.py needs root (it builds labs)", file=sys.stderr)
        return 2
    results = {}
    with tempfile.TemporaryDirectory(prefix="sparkctl-recabling-bench-") as tmp:
        for name in args.scenario or sorted(SCENARIOS):
            results[name] = measure(name, SCENARIOS[name], Path(tmp), args.runs)
    print(f"{'scenario':<16} {'success':>9} {'rate':>6} {'re-run median s':>16} {'max s':>7}")
    for name, (ok, attempts, times) in results.items():
        print(f"{name:<16} {ok:>4}/{attempts:<4} {100 * ok / attempts:>5.0f}% "
              f"{statistics.median(times):>16.1f} {max(times):>7.1f}")
    print(json.dumps({name: {"ok": ok, "attempts": attempts, "seconds": [round(t, 1) for t in times]}
                      for name, (ok, attempts, times) in results.items()}))
    return 0 if all(ok == attempts for ok, attempts, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
