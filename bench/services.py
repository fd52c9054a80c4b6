"""What `sparkctl deploy` and `sparkctl status` cost: a no-change deploy re-run against a bare fact-gathering
play on the same nodes, `status` of N nodes x 4 services (target: 8 x 4 in at most 2 s) against one bare
SSH call to every node at once (what status cannot go below), and the services play on Sparks that have
no services declared (what it adds to every provisioning run) against the same fact-gathering play.

All measured on lab nodes (the services are the lab's stand-ins for docker and the model servers, so
the time is sparkctl's and Ansible's, not a model's). Printed as ratios and seconds measured in one run.

Run as root: `.venv/bin/python bench/services.py [--nodes 8] [--rounds 3]`. Every lab gets a throwaway
SPARKCTL_LAB_ROOT and its own name and is always taken down, also when a run fails.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from sparkctl import ssh
from sparkctl.inventory import load_inventory
from sparkctl.parallel import parallel

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPARKCTL = str(BIN / "sparkctl")
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")
FACTS_PLAY = "- hosts: sparks\n  gather_facts: true\n  tasks: []\n"
_RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", re.MULTILINE)


def services_for(nodes: int) -> list[dict[str, Any]]:
    """Four services on every node: a vLLM, an Ollama, a TTS and a plain container."""
    services: list[dict[str, Any]] = []
    for index in range(1, nodes + 1):
        node = f"spark{index}"
        services += [
            {"name": f"llm{index}", "kind": "vllm", "nodes": [node], "port": 8000, "model": "m/llm", "memory_gb": 20},
            {"name": f"ol{index}", "kind": "ollama", "nodes": [node], "port": 11434, "model": "m:1", "memory_gb": 20},
            {"name": f"tts{index}", "kind": "qwen-tts", "nodes": [node], "port": 8765, "memory_gb": 8},
            {"name": f"app{index}", "kind": "container", "nodes": [node], "port": 9000,
             "image": "example/app:1.0", "memory_gb": 2},
        ]
    return services


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed, result.stdout


def _bare_ssh_round(inventory: Path) -> float:
    """One `true` over SSH to every node at once, as status reaches them (the floor of one call per node)."""
    hosts = load_inventory(inventory)
    targets = [ssh.SSHTarget.from_hostvars(h.name, h.values) for h in hosts]
    start = time.perf_counter()
    parallel(lambda target: ssh.run(target, ["true"], check=True), targets)
    return time.perf_counter() - start


def _declare(inventory: Path, services: list[dict[str, Any]]) -> None:
    group_vars = inventory / "group_vars" / "sparks.yml"
    values = yaml.safe_load(group_vars.read_text(encoding="utf-8"))
    values["sparkctl_services"] = services
    group_vars.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")


def _rerun(inventory: Path, playbook: Path, env: dict[str, str]) -> float:
    """A services play that must change nothing; its seconds."""
    seconds, output = _timed([ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook)], env)
    changed = {host: int(count) for host, count in _RECAP.findall(output)}
    if not changed or any(changed.values()):
        raise RuntimeError(f"the deploy re-run changed something: {changed}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/services.py needs root (it builds a lab)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sparkctl-bench-") as scratch:
        root = Path(scratch)
        env = {**os.environ, "SPARKCTL_LAB_ROOT": str(root), "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
        name = f"bsvc{args.nodes}"
        topology = "direct" if args.nodes == 2 else "ring"
        try:
            _, out = _timed([SPARKCTL, "lab", "up", "--name", name, "--nodes", str(args.nodes), "--topology",
                             topology], env)
            inventory = Path(out.strip().splitlines()[-1])
            _timed([SPARKCTL, "provision", "--inventory", str(inventory)], env)
            _declare(inventory, services_for(args.nodes))
            first, _ = _timed([SPARKCTL, "deploy", "--inventory", str(inventory)], env)
            services = REPO / "playbooks" / "services.yml"
            facts = root / "facts.yml"
            facts.write_text(FACTS_PLAY, encoding="utf-8")
            reruns, gathers, statuses, floors, empties = [], [], [], [], []
            for _ in range(args.rounds):
                reruns.append(_rerun(inventory, services, env))
                gathers.append(_timed([ANSIBLE_PLAYBOOK, "-i", str(inventory), str(facts)], env)[0])
                statuses.append(_timed([SPARKCTL, "status", "--inventory", str(inventory), "--json"], env)[0])
                floors.append(_bare_ssh_round(inventory))
            _declare(inventory, [])
            _timed([ANSIBLE_PLAYBOOK, "-i", str(inventory), str(services)], env)  # removes every service
            for _ in range(args.rounds):
                empties.append(_rerun(inventory, services, env))
        finally:
            subprocess.run([SPARKCTL, "lab", "down", "--name", name], env=env, capture_output=True, check=False)
    rerun, gather, status, floor, empty = (statistics.median(v) for v in (reruns, gathers, statuses, floors, empties))
    print(f"{args.nodes} nodes x 4 services (lab stand-ins), medians of {args.rounds} rounds:")
    print(f"  first deploy                          {first:6.1f} s")
    print(f"  no-change deploy re-run               {rerun:6.1f} s")
    print(f"  bare fact-gathering play              {gather:6.1f} s")
    print(f"  re-run / fact gathering               {rerun / gather:6.2f} x")
    print(f"  services play, no services declared   {empty:6.1f} s   ({empty / gather:.2f} x fact gathering)")
    print(f"  sparkctl status ({args.nodes * 4} services)         {status:6.2f} s   (target <= 2 s: "
          f"{'met' if status <= 2 else 'NOT met'})")
    print(f"  one bare SSH call to every node       {floor:6.2f} s   (status / that: {status / floor:.2f} x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
