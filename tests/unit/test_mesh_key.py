"""The cluster key is authorized only from the cluster's own addresses, computed by the planner."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sparkctl.ansible_bridge import cluster_addresses
from sparkctl.cluster import load_cluster
from sparkctl.errors import InputError
from sparkctl.mesh_key import (
    PublicKey,
    every_line,
    known_hosts,
    mesh_authorization,
    retired_lines,
    ssh_config_block,
)
from tests.unit.conftest import InventoryWriter

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5b+vN1Zm8y/k2u0P3m9yq sparkctl cluster key"
BLOB = KEY.split()[1]


def test_the_key_is_limited_to_management_and_fabric_addresses(write_inventory: InventoryWriter) -> None:
    cluster = load_cluster(write_inventory(3, sparkctl_topology="ring", sparkctl_fabric_pool="10.60.0.0/16"))
    sources = cluster_addresses(cluster.settings, cluster.plan)
    assert sources[:3] == ["192.168.1.101", "192.168.1.102", "192.168.1.103"]
    fabric = {str(a.ip) for node in cluster.plan.nodes.values() for i in node.interfaces for a in i.addresses}
    assert len(fabric) == 12 and set(sources[3:]) == fabric and len(sources) == 15
    line = mesh_authorization(KEY + "\n", sources)["line"]
    assert line == f'from="{",".join(sources)}" ssh-ed25519 {BLOB} sparkctl cluster key'


def test_a_bond_address_is_a_cluster_address(write_inventory: InventoryWriter) -> None:
    cluster = load_cluster(write_inventory(2, sparkctl_topology="bond"))
    bonds = {str(a.ip) for node in cluster.plan.nodes.values() for b in node.bonds for a in b.addresses}
    assert bonds and bonds <= set(cluster_addresses(cluster.settings, cluster.plan))


def test_every_other_line_of_the_key_is_stale_and_no_other_key_is() -> None:
    authorization = mesh_authorization(KEY, ["10.0.0.1", "10.0.0.2"])
    stale = re.compile(authorization["stale"])
    assert not stale.search(authorization["line"])
    for line in (KEY, f'from="10.9.9.9" {KEY}', f'command="/bin/sh" ssh-ed25519 {BLOB} someone',
                 f'from="10.0.0.1,10.0.0.2" ssh-ed25519 {BLOB} sparkctl cluster key  '):
        assert stale.search(line), line
    for line in ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther admin@laptop", f"# {BLOB[:-2]}",
                 f"ssh-ed25519 {BLOB}x other"):
        assert not stale.search(line), line


@pytest.mark.parametrize("key", ["", "not a key", f'{KEY}\nssh-ed25519 {BLOB} second', f'from="x" {KEY}'])
def test_a_public_key_that_is_not_one_key_line_is_refused(key: str) -> None:
    with pytest.raises(InputError, match="is not one OpenSSH public key line"):
        mesh_authorization(key, ["10.0.0.1"])


def test_the_lookup_gives_ansible_the_same_line(write_inventory: InventoryWriter, tmp_path: Path) -> None:
    inv = write_inventory(3, host_vars={"spark3": {"ansible_port": 2222}}, sparkctl_topology="ring")
    playbook = tmp_path / "show.yml"
    playbook.write_text(
        "- hosts: spark1\n  gather_facts: false\n  connection: local\n"
        "  vars:\n    ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n  tasks:\n"
        "    - ansible.builtin.copy:\n"
        f"        content: \"{{{{ lookup('sparkctl_mesh_key', public_key='{KEY}') | to_json }}}}\"\n"
        f"        dest: \"{tmp_path}/out.json\"\n        mode: '0600'\n"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inv), str(playbook)], capture_output=True,
                            text=True, timeout=300, env=env, cwd=REPO, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    got = json.loads((tmp_path / "out.json").read_text())
    cluster = load_cluster(inv)
    sources = cluster_addresses(cluster.settings, cluster.plan)
    authorization = mesh_authorization(KEY, sources)
    assert got == {**authorization, "sources": sources, "every": every_line(KEY),
                   "retired": retired_lines(authorization["line"], []),
                   "fingerprint": PublicKey.parse(KEY).fingerprint,
                   "peers": [{"name": "spark1", "address": "192.168.1.101", "port": 22},
                             {"name": "spark2", "address": "192.168.1.102", "port": 22},
                             {"name": "spark3", "address": "192.168.1.103", "port": 2222}]}


def test_known_hosts_names_each_host_key_by_inventory_name_and_skips_silent_sparks() -> None:
    text = known_hosts(["spark1", "spark2", "spark3"],
                       {"spark1": ["ssh-ed25519 AAAA1 root@a"], "spark2": ["ssh-rsa BBBB", "ssh-ed25519 CCCC"]})
    entries = [line for line in text.splitlines() if not line.startswith("#")]
    assert entries == ["spark1 ssh-ed25519 AAAA1", "spark2 ssh-rsa BBBB", "spark2 ssh-ed25519 CCCC"]


def test_the_ssh_config_block_checks_host_keys_under_the_inventory_name() -> None:
    block = ssh_config_block(["spark1", "spark2"], {"spark1": {"ansible_host": "10.1.0.1", "ansible_port": 2222},
                                                    "spark2": {}}, "root", "/root/.ssh/k", "/root/.ssh/kh")
    assert "Host spark1 10.1.0.1\n    HostName 10.1.0.1\n    Port 2222\n    HostKeyAlias spark1" in block
    assert "Host spark2 spark2\n    HostName spark2\n    Port 22\n    HostKeyAlias spark2" in block
    assert "Host spark1 spark2 10.1.0.1\n    User root\n    IdentityFile /root/.ssh/k" in block
    assert "StrictHostKeyChecking yes" in block and "UserKnownHostsFile /root/.ssh/kh" in block
