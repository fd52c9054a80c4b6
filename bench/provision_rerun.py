"""How long a no-change re-run of `playbooks/site.yml` takes, against a bare fact-gathering play and across sizes.

A re-run is what people do most (after every inventory edit, from CI): it still discovers the
cabling, validates the netplan drop-in, pings every peer half and checks the environment, so it
cannot be as cheap as gathering facts; this measures by how much, and how it grows from 2 to 8
nodes (Ansible runs the nodes in parallel, so it should grow far less than 4x). On a real cluster each
Spark does its own part of the work; in the lab all nodes share this machine's cores with the controller,
so the bench also prints how the bare fact-gathering play grows from 2 to 8 lab nodes, for scale.

Run as root: `.venv/bin/python bench/provision_rerun.py [--rounds N] [--skip-8]`. Every lab gets a
throwaway SPARKCTL_LAB_ROOT and its own name and is always taken down, also when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPARKCTL = str(BIN / "sparkctl")
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")
LAB_NODE_VARS = {"sparkctl_packages_mode": "verify", "sparkctl_packages_rdma_enabled": False,
                 "sparkctl_tuning_unavailable": "report"}
"""What lab nodes cannot do (apt, RDMA tools, writing /proc/sys), passed as extra vars for the lab."""
_RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", re.MULTILINE)
FACTS_PLAY = "- hosts: sparks\n  gather_facts: true\n  tasks: []\n"


def _playbook(inventory: Path, playbook: Path, env: dict[str, str], *, rerun: bool = False) -> float:
    """Seconds one ansible-playbook run takes; raises with its output if it fails, or if a re-run changed
    anything on any host (then it would not be measuring a re-run)."""
    argv = [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook), "-e", json.dumps(LAB_NODE_VARS)]
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{playbook.name} failed:\n{result.stdout[-3000:]}")
    changed = {host: int(count) for host, count in _RECAP.findall(result.stdout)}
    if rerun and (not changed or any(changed.values())):
        raise RuntimeError(f"the re-run changed something: {changed}\n{result.stdout[-3000:]}")
    return elapsed


def measure(nodes: int, topology: str, root: Path, rounds: int) -> tuple[list[float], list[float]]:
    """(re-run seconds, fact-gathering seconds), `rounds` samples each, on one lab of `nodes` nodes."""
    env = {**os.environ, "SPARKCTL_LAB_ROOT": str(root), "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    name = f"bprov{nodes}"
    facts = root / "facts.yml"
    facts.write_text(FACTS_PLAY, encoding="utf-8")
    try:
        up = subprocess.run([SPARKCTL, "lab", "up", "--name", name, "--nodes", str(nodes), "--topology", topology],
                            env=env, capture_output=True, text=True, check=True)
        inventory = Path(up.stdout.strip())
        site = REPO / "playbooks" / "site.yml"
        first = _playbook(inventory, site, env)
        print(f"  {nodes} nodes: first provisioning {first:.1f} s", file=sys.stderr)
        # Interleaved, so a machine that gets busier or quieter during the run moves both alike.
        reruns, gathers = [], []
        for _ in range(rounds):
            reruns.append(_playbook(inventory, site, env, rerun=True))
            gathers.append(_playbook(inventory, facts, env))
        return reruns, gathers
    finally:
        subprocess.run([SPARKCTL, "lab", "down", "--name", name], env=env, capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="re-runs per lab (median reported)")
    parser.add_argument("--skip-8", action="store_true", help="only the 2-node lab")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/provision_rerun.py needs root (it builds labs)", file=sys.stderr)
        return 2
    sizes = [(2, "direct")] + ([] if args.skip_8 else [(8, "ring")])
    results: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sparkctl-prov-bench-") as tmp:
        for nodes, topology in sizes:
            reruns, gathers = measure(nodes, topology, Path(tmp), args.rounds)
            results[nodes] = (statistics.median(reruns), statistics.median(gathers))
    print(f"{'nodes':>5} {'site.yml re-run s':>18} {'gather_facts play s':>20} {'ratio':>6}")
    for nodes, (rerun, gather) in results.items():
        print(f"{nodes:>5} {rerun:>18.1f} {gather:>20.1f} {rerun / gather:>6.1f}")
    if 8 in results:
        print(f"8-node re-run / 2-node re-run: {results[8][0] / results[2][0]:.2f}x (4x the nodes); the bare "
              f"fact-gathering play on the same labs: {results[8][1] / results[2][1]:.2f}x, which is how Ansible "
              "alone grows here, where every lab node shares this machine's cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
