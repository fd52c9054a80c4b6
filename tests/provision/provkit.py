"""Checks of the provisioning tests: what a run reported, and what is really on the nodes.

What is checked is read on the nodes themselves over SSH (the lab's key, host keys checked) and
compared with the plan the sparkctl planner makes for the cabling the lab really has, so a test
fails when discovery, rendering or applying goes wrong, not only when a task reports failure.
"""

from __future__ import annotations

import json
import re

from sparkctl.cluster import Cluster
from sparkctl.provisioning.events import Recap
from sparkctl.render import node_files
from tests.labkit import Lab

_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


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


# --- checks on the nodes ----------------------------------------------------------------------------------

def assert_fabric_as_planned(lab: Lab, cluster: Cluster | None = None) -> Cluster:
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


def assert_environment(lab: Lab, cluster: Cluster) -> None:
    """A login shell and systemd on every node see the planned NCCL / UCX / MPI environment."""
    for name, node in cluster.plan.nodes.items():
        shell = lab.sh(name, "env", "-i", "HOME=/root", "bash", "-l", "-c", "env").stdout.splitlines()
        manager = lab.sh(name, "systemctl", "show-environment").stdout.splitlines()
        unit = lab.sh(name, "systemd-run", "--quiet", "--wait", "--pipe", "--collect", "env").stdout.splitlines()
        for key, value in node.env.items():
            assert f"{key}={value}" in shell, f"{name}: login shell lacks {key}={value}"
            assert f"{key}={value}" in manager, f"{name}: systemd lacks {key}={value}"
            assert f"{key}={value}" in unit, f"{name}: a new unit lacks {key}={value}"
