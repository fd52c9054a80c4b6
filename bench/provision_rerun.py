"""How long a no-change re-run of `playbooks/site.yml` takes, against a bare fact-gathering play and across sizes.

A re-run is what people do most (after every inventory edit, from CI): it still discovers the
cabling, validates the netplan drop-in, pings every peer half and checks the environment, so it
cannot be as cheap as gathering facts; this measures by how much, and how it grows from 2 to 8
nodes (Ansible runs the nodes in parallel, so it should grow far less than 4x). On a real cluster each
Spark does its own part of the work; in the lab all nodes share this machine's cores with the controller,
so the bench also prints how the bare fact-gathering play grows from 2 to 8 lab nodes, for scale, and
the CPU time every run took on this machine (controller and lab nodes together, from /proc/stat): where
the 2-node run already keeps the cores busy, the 8-node run cannot take less than its CPU time allows.
The controller's own share (ansible-playbook, its workers and ssh clients) is printed per host and task:
that is what a larger cluster costs the machine that runs Ansible, whatever the nodes' own cores.

Run as root: `.venv/bin/python bench/provision_rerun.py [--rounds N] [--skip-8]`. Every lab gets a
throwaway SPARKCTL_LAB_ROOT and its own name and is always taken down, also when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPARKCTL = str(BIN / "sparkctl")
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")
LAB_NODE_VARS = {"sparkctl_packages_mode": "verify", "sparkctl_packages_rdma_enabled": False,
                 "sparkctl_tuning_unavailable": "report"}
"""What lab nodes cannot do (apt, RDMA tools, writing /proc/sys), passed as extra vars for the lab."""
_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+).*?skipped=(\d+)", re.MULTILINE)
FACTS_PLAY = "- hosts: sparks\n  gather_facts: true\n  tasks: []\n"


class Sample(NamedTuple):
    """One run: wall seconds, CPU seconds of the whole machine and of the controller, host-tasks run."""

    wall: float
    cpu: float
    controller: float
    host_tasks: int


def busy_seconds() -> float:
    """CPU seconds this machine has spent busy since boot, all cores (user, nice, system, irq, softirq)."""
    with open("/proc/stat", encoding="ascii") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, stat.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _controller_seconds() -> float:
    """CPU seconds of this process's finished children (ansible-playbook with its workers and ssh clients)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _playbook(inventory: Path, playbook: Path, env: dict[str, str], *, rerun: bool = False) -> Sample:
    """Wall seconds, CPU seconds of the whole machine and of the controller, and host-tasks, of one
    ansible-playbook run; raises with its output if it fails, or if a re-run changed anything on any host
    (then it would not be measuring a re-run)."""
    argv = [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook), "-e", json.dumps(LAB_NODE_VARS)]
    start, busy, controller = time.perf_counter(), busy_seconds(), _controller_seconds()
    result = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed, cpu = time.perf_counter() - start, busy_seconds() - busy
    if result.returncode != 0:
        raise RuntimeError(f"{playbook.name} failed:\n{result.stdout[-3000:]}")
    recap = _RECAP.findall(result.stdout)
    changed = {host: int(count) for host, _, count, _ in recap}
    if rerun and (not changed or any(changed.values())):
        raise RuntimeError(f"the re-run changed something: {changed}\n{result.stdout[-3000:]}")
    host_tasks = sum(int(ok) + int(skipped) for _, ok, _, skipped in recap)
    return Sample(elapsed, cpu, _controller_seconds() - controller, host_tasks)


def measure(nodes: int, topology: str, root: Path, rounds: int) -> tuple[list[Sample], list[Sample]]:
    """(re-runs, fact-gathering runs), `rounds` samples each, on one lab of `nodes` nodes."""
    env = {**os.environ, "SPARKCTL_LAB_ROOT": str(root), "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    name = f"bprov{nodes}"
    facts = root / "facts.yml"
    facts.write_text(FACTS_PLAY, encoding="utf-8")
    try:
        up = subprocess.run([SPARKCTL, "lab", "up", "--name", name, "--nodes", str(nodes), "--topology", topology],
                            env=env, capture_output=True, text=True, check=True)
        inventory = Path(up.stdout.strip())
        site = REPO / "playbooks" / "site.yml"
        first = _playbook(inventory, site, env).wall
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
    results: dict[int, tuple[Sample, Sample]] = {}
    with tempfile.TemporaryDirectory(prefix="sparkctl-prov-bench-") as tmp:
        for nodes, topology in sizes:
            reruns, gathers = measure(nodes, topology, Path(tmp), args.rounds)
            results[nodes] = (_median(reruns), _median(gathers))
    cores = os.cpu_count() or 1
    print(f"{'nodes':>5} {'site.yml re-run s':>18} {'gather_facts play s':>20} {'ratio':>6} "
          f"{'re-run CPU s':>13} {'cores busy':>11} {'controller ms per host-task':>28}")
    for nodes, (rerun, gather) in results.items():
        print(f"{nodes:>5} {rerun.wall:>18.1f} {gather.wall:>20.1f} {rerun.wall / gather.wall:>6.1f} "
              f"{rerun.cpu:>13.1f} {rerun.cpu / (rerun.wall * cores):>10.0%} "
              f"{1000 * rerun.controller / rerun.host_tasks:>28.0f}")
    if 8 in results:
        (rerun2, gather2), (rerun8, gather8) = results[2], results[8]
        print(f"8-node re-run / 2-node re-run: {rerun8.wall / rerun2.wall:.2f}x (4x the nodes); the bare "
              f"fact-gathering play on the same labs: {gather8.wall / gather2.wall:.2f}x, which is how Ansible "
              "alone grows here, where every lab node shares this machine's cores")
        print(f"CPU seconds per added lab node (controller and node together): re-run "
              f"{(rerun8.cpu - rerun2.cpu) / 6:.2f}, fact-gathering play {(gather8.cpu - gather2.cpu) / 6:.2f}; "
              f"with {cores} cores the 8-node re-run needs at least {rerun8.cpu / cores:.1f} s of wall time here")
    return 0


def _median(samples: list[Sample]) -> Sample:
    return Sample(*(statistics.median(getattr(s, field) for s in samples) for field in Sample._fields))


if __name__ == "__main__":
    sys.exit(main())
