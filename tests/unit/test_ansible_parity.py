"""Ansible and the CLI read the same inventory the same way and compute the same plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sparkctl.cluster import load_cluster
from sparkctl.render import node_files
from tests.unit.conftest import InventoryWriter

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_ansible_inventory_sees_the_same_values(write_inventory: InventoryWriter) -> None:
    inv = write_inventory(3, sparkctl_topology="ring", host_vars={"spark3": {"ansible_host": "192.168.7.3"}})
    (inv / "group_vars" / "all.yml").write_text("sparkctl_mtu: 1500\nsparkctl_fabric_pool: 10.60.0.0/16\n")
    result = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(inv), "--list"], capture_output=True,
                            text=True, check=True, timeout=120)
    hostvars = json.loads(result.stdout)["_meta"]["hostvars"]
    cluster = load_cluster(inv)
    for host in cluster.inventory:
        theirs = {k: v for k, v in hostvars[host.name].items() if k.startswith(("sparkctl_", "ansible_host"))}
        ours = {k: v for k, v in host.values.items() if k.startswith(("sparkctl_", "ansible_host"))}
        assert ours == theirs


def test_lookup_plugin_renders_what_sparkctl_renders(write_inventory: InventoryWriter, tmp_path: Path) -> None:
    inv = write_inventory(4, sparkctl_topology="ring")
    playbook = tmp_path / "show.yml"
    playbook.write_text(
        "- hosts: sparks\n  gather_facts: false\n  connection: local\n"
        "  vars:\n    ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n  tasks:\n"
        "    - ansible.builtin.copy:\n"
        "        content: \"{{ lookup('sparkctl_plan', host=inventory_hostname).files.netplan.content }}\"\n"
        f"        dest: \"{tmp_path}/{{{{ inventory_hostname }}}}.yaml\"\n        mode: '0600'\n"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv), str(playbook)], capture_output=True,
                            text=True, timeout=300, env=env, cwd=REPO, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    plan = load_cluster(inv).plan
    for name in plan.nodes:
        assert (tmp_path / f"{name}.yaml").read_text() == node_files(plan, name)["netplan"].content
