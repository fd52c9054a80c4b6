"""How often ONE plain re-run of `playbooks/site.yml` reconciles a recabled lab, and how long that run takes.

Each scenario is a cable move and its way back, both reconciled by one re-run each, on one lab provisioned
once per topology: a 3-node ring reversed (every cable moves) and restored, the same ring with two nodes
swapped and restored, a 3-ring grown to four (a booted Spark added to the inventory and cabled in) and shrunk
back to three, a 2-node direct lab recabled p0-p0 -> p1-p1 and back, the same lab given a second cable and
back to one, and a 2-node storage split whose peer and storage cages are swapped and swapped back (with
`sparkctl_storage.port` edited to match, as the owner must). A run counts as a success when ansible-playbook
exits 0 and `sparkctl verify-link` then passes on the same inventory; the time is that of the playbook run
alone. The success rate should be 100%: recabling is something users do, and a re-run must converge every
time.

Run as root: `.venv/bin/python bench/recabling_stress.py [--runs N] [--scenario ring-reversed ...]`.
Every lab gets a throwaway SPARKCTL_LAB_ROOT and its own name and is always taken down, also when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sparkctl.lab.edits import copy_without, set_storage_port

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
    setup: Moves = field(default_factory=list)
    """Moves before the first provisioning."""
    joining: tuple[str, ...] = ()
    """Sparks booted but left out of the inventory for the first provisioning and after the move back; the
    move there adds them."""


RING_FORWARD: Moves = [("cable", "spark1:p0", "spark2:p1"), ("cable", "spark2:p0", "spark3:p1"),
                ("cable", "spark3:p0", "spark1:p1")]
RING_REVERSED: Moves = [("cable", "spark1:p1", "spark2:p0"), ("cable", "spark2:p1", "spark3:p0"),
                 ("cable", "spark3:p1", "spark1:p0")]
RING_SWAPPED: Moves = [("cable", "spark1:p0", "spark3:p1"), ("cable", "spark3:p0", "spark2:p1"),
                      ("cable", "spark2:p0", "spark1:p1")]
"""spark2 and spark3 trade places in the ring."""
RING_OF_THREE: Moves = [("uncable", "spark3:p0"), ("uncable", "spark4:p0"), ("cable", "spark3:p0", "spark1:p1")]
"""A 4-node lab's ring closed over spark1..3, spark4 left uncabled."""
RING_OF_FOUR: Moves = [("uncable", "spark3:p0"), ("cable", "spark3:p0", "spark4:p1"),
                       ("cable", "spark4:p0", "spark1:p1")]
UNCABLE_P0: Moves = [("uncable", f"spark{n}:p0") for n in (1, 2, 3)]
SCENARIOS = {
    "ring-reversed": Scenario(3, "ring",
                              UNCABLE_P0 + RING_REVERSED, UNCABLE_P0 + RING_FORWARD),
    "ring-swapped": Scenario(3, "ring", UNCABLE_P0 + RING_SWAPPED, UNCABLE_P0 + RING_FORWARD),
    "ring-grown": Scenario(4, "ring", RING_OF_FOUR, RING_OF_THREE, setup=RING_OF_THREE, joining=("spark4",)),
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


def _lab(env: dict[str, str], *args: str) -> str:
    return subprocess.run([SPARKCTL, "lab", *args], env=env, capture_output=True, text=True, check=True).stdout


def _rerun(inventory: Path, env: dict[str, str]) -> tuple[bool, float, str, str]:
    """(success, seconds of the playbook run, what failed, the whole output) of one plain ansible-playbook run
    followed by verify-link."""
    start = time.perf_counter()
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory), str(REPO / "playbooks" / "site.yml")],
                            env=env, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        lines = result.stdout.splitlines()
        errors = [line for line in lines if "[ERROR]" in line or "fatal:" in line]
        return False, elapsed, "playbook: " + " | ".join(errors or lines[-20:]), result.stdout + result.stderr
    verify = subprocess.run([SPARKCTL, "verify-link", "-i", str(inventory), "--json", "--duration", "2"],
                            env=env, cwd=REPO, capture_output=True, text=True, check=False)
    if verify.returncode != 0:
        try:
            problems = json.loads(verify.stdout)["problems"]
        except (ValueError, KeyError):
            problems = verify.stdout[-1500:] + verify.stderr[-1500:]
        return False, elapsed, f"verify-link: {problems}", result.stdout + verify.stdout + verify.stderr
    return True, elapsed, "", ""


def measure(name: str, scenario: Scenario, root: Path, runs: int,
            failures: Path | None) -> tuple[int, int, list[float]]:
    """(successes, attempts, seconds of every reconciling run) over `runs` moves there and back; the whole
    output of each failed run goes to a file in `failures`."""
    # verify-link's saved link figures go to the throwaway root too, not to the user's state directory.
    env = {**os.environ, "SPARKCTL_LAB_ROOT": str(root), "SPARKCTL_STATE_DIR": str(root),
           "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    lab = f"bre{scenario.nodes}{secrets.token_hex(2)}"
    ok = attempts = 0
    times: list[float] = []
    try:
        full = Path(_lab(env, "up", "--name", lab, "--nodes", str(scenario.nodes),
                         "--topology", scenario.topology).strip())
        for move in scenario.setup:
            _lab(env, *move, "--name", lab)
        small = copy_without(full, root / f"{lab}-inventory", scenario.joining) if scenario.joining else full
        first, seconds, errors, _ = _rerun(small, env)
        if not first:
            raise RuntimeError(f"the first provisioning failed: {errors}")
        print(f"  {name}: provisioned in {seconds:.1f} s", file=sys.stderr)
        for run in range(runs):
            for step, (label, moves, inventory) in enumerate((("there", scenario.there, full),
                                                              ("back", scenario.back, small))):
                for move in moves:
                    _lab(env, *move, "--name", lab)
                if scenario.storage_port:
                    set_storage_port(inventory, scenario.storage_port[step])
                success, seconds, errors, output = _rerun(inventory, env)
                attempts += 1
                ok += success
                times.append(seconds)
                print(f"  {name} run {run + 1} {label}: {'ok' if success else 'FAILED'} in {seconds:.1f} s"
                      + (f" ({errors})" if errors else ""), file=sys.stderr)
                if not success:  # converge before the next attempt, so each attempt starts clean
                    if failures:
                        failures.mkdir(parents=True, exist_ok=True)
                        (failures / f"{name}-{run + 1}-{label}.log").write_text(output, encoding="utf-8")
                    settled, seconds, errors, _ = _rerun(inventory, env)
                    print(f"  {name} run {run + 1} {label}, run again: {'ok' if settled else 'FAILED'} in "
                          f"{seconds:.1f} s" + (f" ({errors})" if errors else ""), file=sys.stderr)
        return ok, attempts, times
    finally:
        subprocess.run([SPARKCTL, "lab", "down", "--name", lab], env=env, capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="moves there and back per scenario")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append",
                        help="only these scenarios, in this order (default: all)")
    parser.add_argument("--failures", type=Path, help="write the whole output of every failed run here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/recabling_stress.py needs root (it builds labs)", file=sys.stderr)
        return 2
    # Stopped with SIGTERM (as a background run is), the labs still come down: the exit unwinds through `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = {}
    with tempfile.TemporaryDirectory(prefix="sparkctl-recabling-bench-") as tmp:
        for name in args.scenario or list(SCENARIOS):
            results[name] = measure(name, SCENARIOS[name], Path(tmp), args.runs, args.failures)
    print(f"{'scenario':<16} {'success':>9} {'rate':>6} {'re-run median s':>16} {'max s':>7}")
    for name, (ok, attempts, times) in results.items():
        print(f"{name:<16} {ok:>4}/{attempts:<4} {100 * ok / attempts:>5.0f}% "
              f"{statistics.median(times):>16.1f} {max(times):>7.1f}")
    print(json.dumps({name: {"ok": ok, "attempts": attempts, "seconds": [round(t, 1) for t in times]}
                      for name, (ok, attempts, times) in results.items()}))
    return 0 if all(ok == attempts for ok, attempts, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
