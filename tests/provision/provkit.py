"""Helpers for the provisioning tests: labs through `sparkctl lab`, runs through ansible, checks on the nodes.

What is checked is read on the nodes themselves over SSH (the lab's key, host keys checked) and
compared with the plan the sparkctl planner makes for the cabling the lab really has, so a test
fails when discovery, rendering or applying goes wrong, not only when a task reports failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from sparkctl import ssh
from sparkctl.cluster import Cluster, load_cluster
from sparkctl.commands.lab import lab as lab_cli
from sparkctl.model import Cable, Endpoint
from sparkctl.provisioning import runner
from sparkctl.provisioning.events import Recap
from sparkctl.render import node_files

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")
SPARKCTL = str(BIN / "sparkctl")

_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def _lab_cli(root: Path, *args: str) -> str:
    result = CliRunner().invoke(lab_cli, list(args), env={"SPARKCTL_LAB_ROOT": str(root)})
    if result.exit_code != 0:
        raise AssertionError(f"sparkctl lab {' '.join(args)} exited {result.exit_code}: {result.output}")
    return result.stdout


@dataclass
class ProvLab:
    root: Path
    name: str
    inventory: Path

    def lab(self, *args: str) -> str:
        return _lab_cli(self.root, *args, "--name", self.name)

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.lab("status", "--json"))
        return data

    def cables(self) -> list[Cable]:
        """The Spark-to-Spark cables the lab has plugged in (what discovery must find)."""
        found = []
        for item in self.status()["cables"]:
            ends = [str(item["a"]), str(item["b"])]
            if all(":" in end for end in ends):
                (a_node, a_port), (b_node, b_port) = (end.split(":") for end in ends)
                found.append(Cable.between(Endpoint(a_node, a_port), Endpoint(b_node, b_port)))
        return found

    def expected(self) -> Cluster:
        """The plan for the cabling the lab really has."""
        return load_cluster(self.inventory, discovered=self.cables() or None)

    def target(self, node: str) -> ssh.SSHTarget:
        hostvars = self.hostvars()
        return ssh.SSHTarget.from_hostvars(node, {**hostvars, "ansible_host": self.address(node)})

    def hostvars(self) -> dict[str, Any]:
        import yaml

        data: dict[str, Any] = yaml.safe_load((self.inventory / "group_vars" / "sparks.yml").read_text())
        return data

    def address(self, node: str) -> str:
        import yaml

        hosts = yaml.safe_load((self.inventory / "hosts.yml").read_text())
        return str(hosts["all"]["children"]["sparks"]["hosts"][node]["ansible_host"])

    def sh(self, node: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return ssh.run(self.target(node), list(argv), check=check, timeout=60)

    def playbook(self, *args: str, extravars: dict[str, Any] | None = None,
                 playbook: str = "playbooks/site.yml") -> subprocess.CompletedProcess[str]:
        """Plain ansible-playbook, as a user runs it from the repository (ansible.cfg of the checkout)."""
        argv = [ANSIBLE_PLAYBOOK, "-i", str(self.inventory), str(REPO / playbook), *args]
        if extravars:
            argv += ["-e", json.dumps(extravars)]
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False)

    def provision_api(self, **kwargs: Any) -> runner.RunOutcome:
        """The run `sparkctl provision` makes, through the same Python API, for its recap."""
        run = runner.PlaybookRun(inventory=self.inventory, **kwargs)
        return runner.run(run, lambda event: None)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP lines of ansible-playbook's output, per host."""
    return {
        host: {"ok": int(ok), "changed": int(changed), "unreachable": int(dark), "failed": int(failed)}
        for host, ok, changed, dark, failed in _RECAP.findall(output)
    }


def flat(text: str) -> str:
    """Output with its line wrapping undone (the yaml callback folds long messages)."""
    return " ".join(text.replace("\\n", " ").split())


def unchanged(outcome: Recap) -> dict[str, int]:
    """Per host, how many tasks changed something (all zero on an idempotent re-run)."""
    return {host: stats.changed for host, stats in outcome.hosts.items()}


@contextmanager
def running_lab(root: Path, *, nodes: int, topology: str) -> Iterator[ProvLab]:
    """A lab for the duration of the block, always taken down by its name."""
    name = "p" + secrets.token_hex(3)
    try:
        inventory = Path(_lab_cli(root, "up", "--name", name, "--nodes", str(nodes), "--topology", topology).strip())
        yield ProvLab(root, name, inventory)
    finally:
        _lab_cli(root, "down", "--name", name)


# --- checks on the nodes ----------------------------------------------------------------------------------

def assert_fabric_as_planned(lab: ProvLab, cluster: Cluster | None = None) -> Cluster:
    """Every node's fabric files, addresses, MTU and routes are the plan's, and every peer answers on every half."""
    cluster = cluster or lab.expected()
    data = cluster.plan.to_dict()
    for name, node in cluster.plan.nodes.items():
        files = node_files(cluster.plan, name, data)
        for rendered in files.values():
            shown = lab.sh(name, "stat", "-c", "%a", rendered.path).stdout.strip()
            assert shown == rendered.mode.lstrip("0"), f"{name}: {rendered.path} has mode {shown}"
            content = lab.sh(name, "cat", rendered.path).stdout
            assert content == rendered.content, f"{name}: {rendered.path} is not what the planner renders"
        live = {link["ifname"]: link for link in json.loads(lab.sh(name, "ip", "-json", "address", "show").stdout)}
        for iface in node.interfaces:
            have = live[iface.name]
            assert have["mtu"] == iface.mtu, f"{name} {iface.name}: MTU {have['mtu']}, planned {iface.mtu}"
            addresses = sorted(f"{a['local']}/{a['prefixlen']}" for a in have.get("addr_info", [])
                               if a["family"] == "inet")
            assert addresses == sorted(str(a) for a in iface.addresses), f"{name} {iface.name}: {addresses}"
        routes = json.loads(lab.sh(name, "ip", "-json", "-4", "route", "show").stdout)
        for route in node.routes:
            assert any(r["dst"] == str(route.to) and r.get("gateway") == route.via for r in routes), route
    for link in cluster.plan.links:
        if link.kind != "peer":
            continue
        for here, there in ((link.a, link.b), (link.b, link.a)):
            assert there.address is not None
            lab.sh(here.node, "ping", "-n", "-q", "-c", "1", "-W", "2", "-M", "do",
                   "-s", str(cluster.plan.mtu - 28), "-I", here.interface, str(there.address.ip))
    return cluster


def assert_environment(lab: ProvLab, cluster: Cluster) -> None:
    """A login shell and systemd on every node see the planned NCCL / UCX / MPI environment."""
    for name, node in cluster.plan.nodes.items():
        shell = lab.sh(name, "env", "-i", "HOME=/root", "bash", "-l", "-c", "env").stdout.splitlines()
        manager = lab.sh(name, "systemctl", "show-environment").stdout.splitlines()
        unit = lab.sh(name, "systemd-run", "--quiet", "--wait", "--pipe", "--collect", "env").stdout.splitlines()
        for key, value in node.env.items():
            assert f"{key}={value}" in shell, f"{name}: login shell lacks {key}={value}"
            assert f"{key}={value}" in manager, f"{name}: systemd lacks {key}={value}"
            assert f"{key}={value}" in unit, f"{name}: a new unit lacks {key}={value}"
