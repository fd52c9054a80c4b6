"""How long `sparkctl doctor` takes on 8 provisioned lab Sparks against 2, measured in one run.

Doctor reads every node at once (one SSH call each, in parallel), so 4x the nodes should cost far
less than 4x the time: the target is at most 1.5x. Two figures per size: the whole command as a user
runs it (Python and Ansible's inventory reader start-up included, the same for any size), and the
reading of the nodes alone (`doctor.gather`, where the node count shows).

The two labs are built one after the other, so the load of a shared machine can change between
them; the 8-node lab therefore also reads 2 of its nodes and all 8 alternately, round by round, which
gives a ratio both sides of which saw the same load.

Run as root: `.venv/bin/python bench/doctor.py [--rounds N]`. Each lab gets a throwaway
SPARKCTL_LAB_ROOT and its own name, is provisioned with `sparkctl provision`, and is always taken
down, also when a run fails. On a small machine the 8-node lab takes minutes to build.
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
from pathlib import Path

from sparkctl import doctor, ssh
from sparkctl.inventory import load_inventory

BIN = Path(sys.executable).parent
SPARKCTL = str(BIN / "sparkctl")


def _doctor_seconds(inventory: Path, env: dict[str, str]) -> float:
    """Wall time of one `sparkctl doctor --json`; raises if it finds anything (a clean lab is measured)."""
    start = time.perf_counter()
    result = subprocess.run([SPARKCTL, "doctor", "--inventory", str(inventory), "--json"], env=env,
                            capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"doctor exited {result.returncode}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed


def _gather_seconds(inventory: Path, nodes: int | None = None) -> float:
    """Wall time of reading every node, or the first `nodes` (the SSH calls, in parallel), without the
    command's start-up."""
    hosts = list(load_inventory(inventory))[:nodes]
    targets = {h.name: ssh.SSHTarget.from_hostvars(h.name, h.values) for h in hosts}
    start = time.perf_counter()
    doctor.gather(targets, doctor.READ_FILES)
    return time.perf_counter() - start


def measure(nodes: int, topology: str, root: Path, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """(doctor command seconds, gather seconds, gather-all / gather-2 ratios taken alternately), `rounds`
    samples each, on one provisioned lab."""
    env = {**os.environ, "SPARKCTL_LAB_ROOT": str(root)}
    name = f"bdoc{nodes}"
    try:
        up = subprocess.run([SPARKCTL, "lab", "up", "--name", name, "--nodes", str(nodes), "--topology", topology],
                            env=env, capture_output=True, text=True, check=False)
        if up.returncode != 0:
            raise RuntimeError(f"lab up ({nodes} nodes) exited {up.returncode}:\n{up.stderr[-3000:]}")
        inventory = Path(up.stdout.strip())
        start = time.perf_counter()
        provision = subprocess.run([SPARKCTL, "provision", "--inventory", str(inventory)], env=env,
                                   capture_output=True, text=True, check=False)
        if provision.returncode != 0:
            raise RuntimeError(f"provisioning {nodes} nodes failed:\n{provision.stderr[-3000:]}")
        print(f"  {nodes} nodes: provisioned in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        _doctor_seconds(inventory, env)  # the first look sets the error counters' baseline
        commands = [_doctor_seconds(inventory, env) for _ in range(rounds)]
        gathers = [_gather_seconds(inventory) for _ in range(rounds)]
        print(f"  {nodes} nodes: doctor {json.dumps([round(c, 2) for c in commands])} s, "
              f"gather {json.dumps([round(g, 2) for g in gathers])} s", file=sys.stderr)
        alternate = [_gather_seconds(inventory) / _gather_seconds(inventory, 2) for _ in range(rounds * 2)]
        return commands, gathers, alternate
    finally:
        subprocess.run([SPARKCTL, "lab", "down", "--name", name], env=env, capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="doctor runs per lab (median reported)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/doctor.py needs root (it builds labs)", file=sys.stderr)
        return 2
    results: dict[int, tuple[float, float]] = {}
    alternate: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="sparkctl-doctor-bench-") as tmp:
        for nodes, topology in ((2, "direct"), (8, "ring")):
            commands, gathers, alternate[nodes] = measure(nodes, topology, Path(tmp), args.rounds)
            results[nodes] = (statistics.median(commands), statistics.median(gathers))
    print(f"{'nodes':>5} {'sparkctl doctor s':>18} {'reading the nodes s':>20}")
    for nodes, (command, gather) in results.items():
        print(f"{nodes:>5} {command:>18.2f} {gather:>20.2f}")
    print(f"doctor on 8 / doctor on 2: {results[8][0] / results[2][0]:.2f}x the time for 4x the nodes "
          f"(reading the nodes alone: {results[8][1] / results[2][1]:.2f}x); target <= 1.5x")
    print(f"same lab, same load: reading 8 nodes / reading 2 of them, alternately: "
          f"{statistics.median(alternate[8]):.2f}x (median of {len(alternate[8])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
