"""`sparkctl keys rotate` on a provisioned pair of lab Sparks; the tests run in order on one lab.

Everything is read on the nodes themselves: which key each one holds, what its authorized_keys
says, and whether each really logs in to the other as root with the new key alone (batch mode, no
config file, host keys checked against the cluster's known_hosts) and no longer with the old one.
The failure case makes one node's authorized_keys immutable, as a node that cannot take the new key.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkctl.mesh_key import PublicKey
from sparkctl.provisioning import runner
from sparkctl.provisioning.events import Event, HostResult
from tests.labkit import SPARKCTL, Lab, running_lab
from tests.provision.provkit import flat, unchanged

pytestmark = pytest.mark.lab

NODES = ("spark1", "spark2")
SSH_DIR = "/root/.ssh"
KEY = f"{SSH_DIR}/id_ed25519_sparkctl"
KNOWN_HOSTS = f"{SSH_DIR}/known_hosts_sparkctl"
COMMENT = "sparkctl cluster key"


@pytest.fixture(scope="module")
def lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, nodes=2, topology="direct", prefix="kr") as made:
        yield made


def sparkctl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SPARKCTL, *args, "--inventory", str(lab.inventory)], capture_output=True, text=True,
                          timeout=600, check=False, env={**os.environ, "COLUMNS": "200"})


def public_blob(lab: Lab, node: str) -> str:
    return lab.sh(node, "cat", f"{KEY}.pub").stdout.split()[1]


def authorized(lab: Lab, node: str) -> list[str]:
    return lab.sh(node, "cat", f"{SSH_DIR}/authorized_keys").stdout.splitlines()


def other(node: str) -> str:
    return NODES[1 - NODES.index(node)]


def login_with(lab: Lab, node: str, key: str) -> tuple[int, str]:
    """From `node`, log in to the other node as root with `key` alone and run `whoami` there: (status, output).

    The inner ssh's status is printed, so it is not taken for a failure of the outer connection."""
    peer = other(node)
    argv = ["ssh", "-F", "none", "-n", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
            "-o", f"IdentityFile={key}", "-o", f"UserKnownHostsFile={KNOWN_HOSTS}", "-o", "StrictHostKeyChecking=yes",
            "-o", f"HostKeyAlias={peer}", "-o", "ConnectTimeout=5", "-l", "root",
            lab.state.nodes[peer].mgmt_address, "whoami"]
    said = lab.sh(node, "sh", "-c", f"{shlex.join(argv)} 2>&1; echo status=$?").stdout
    output, _, status = said.rpartition("status=")
    return int(status), output.strip()


def by_name(lab: Lab, node: str) -> str:
    """From `node`, SSH to the other one by name, as mpirun does (through ~/.ssh/config)."""
    return lab.sh(node, "ssh", "-n", "-o", "BatchMode=yes", other(node), "hostname").stdout.strip()


def test_provisioned_pair_shares_one_cluster_key(lab: Lab) -> None:
    result = sparkctl(lab, "provision")
    assert result.returncode == 0, result.stderr[-3000:]
    assert public_blob(lab, "spark1") == public_blob(lab, "spark2")
    for node in NODES:
        assert by_name(lab, node) == other(node)


def test_rotate_puts_a_new_key_everywhere_and_removes_the_old_one(lab: Lab, tmp_path: Path) -> None:
    old_blob = public_blob(lab, "spark1")
    old_private = (lab.paths.node_root_home("spark1") / ".ssh" / "id_ed25519_sparkctl").read_text()

    result = sparkctl(lab, "keys", "rotate")
    assert result.returncode == 0, result.stderr[-4000:]
    said = flat(result.stderr)
    assert "equivalent: ANSIBLE_CONFIG=" in said and "playbooks/ssh_mesh.yml" in said
    assert '"sparkctl_ssh_mesh_rotate": true' in said and "cluster key rotated on 2 node(s)" in said
    assert "PRIVATE KEY" not in result.stderr + result.stdout
    assert old_private.splitlines()[1] not in result.stderr + result.stdout

    new_blob = public_blob(lab, "spark1")
    assert new_blob != old_blob and public_blob(lab, "spark2") == new_blob
    for node in NODES:
        assert lab.sh(node, "stat", "-c", "%a %U", KEY).stdout.split() == ["600", "root"]
        assert lab.sh(node, "ls", f"{KEY}.new", check=False).returncode != 0, "staged key left behind"
        lines = authorized(lab, node)
        assert not [line for line in lines if old_blob in line], f"{node} still authorizes the old key: {lines}"
        mesh = [line for line in lines if line.endswith(COMMENT)]
        assert len(mesh) == 1 and new_blob in mesh[0] and mesh[0].startswith('from="'), mesh
        assert any("sparkctl-lab-" in line for line in lines), "the lab's own key is gone"
    for node in NODES:
        assert login_with(lab, node, KEY) == (0, "root"), node
        assert by_name(lab, node) == other(node)

    # The old key no longer opens anything, even from a cluster address.
    staged = lab.paths.node_root_home("spark1") / "old_cluster_key"
    staged.write_text(old_private)
    staged.chmod(0o600)
    try:
        status, output = login_with(lab, "spark1", "/root/old_cluster_key")
        assert status == 255 and "Permission denied" in output, output
    finally:
        staged.unlink()


def test_a_provision_after_the_rotation_changes_nothing(lab: Lab) -> None:
    results: list[HostResult] = []

    def keep(event: Event) -> None:
        if isinstance(event, HostResult):
            results.append(event)

    outcome = runner.run(runner.PlaybookRun(inventory=lab.inventory), keep)
    assert outcome.status == "successful", outcome.failures
    mesh = [r for r in results if r.role == "sparkctl_ssh_mesh"]
    assert mesh and not [r for r in mesh if r.outcome == "changed"], [r for r in mesh if r.outcome == "changed"]
    assert unchanged(outcome.recap) == {"spark1": 0, "spark2": 0}


def test_check_mode_says_what_would_happen_and_changes_nothing(lab: Lab) -> None:
    before = {node: (public_blob(lab, node), authorized(lab, node)) for node in NODES}
    result = sparkctl(lab, "keys", "rotate", "--check")
    assert result.returncode == 0, result.stderr[-3000:]
    said = flat(result.stderr)
    assert "Would make a new cluster key on spark1" in said and "check mode: nothing changed" in said
    assert {node: (public_blob(lab, node), authorized(lab, node)) for node in NODES} == before


def test_plain_ansible_playbook_rotates_the_same_way_and_refuses_a_partial_run(lab: Lab) -> None:
    current = public_blob(lab, "spark1")
    rotate = {"sparkctl_ssh_mesh_rotate": True}
    partial = lab.playbook("--limit", "spark1", playbook="playbooks/ssh_mesh.yml", extravars=rotate)
    assert partial.returncode != 0
    assert "this run leaves out spark2 (--limit?)" in flat(partial.stdout), partial.stdout[-3000:]
    assert [public_blob(lab, node) for node in NODES] == [current, current]

    result = lab.playbook(playbook="playbooks/ssh_mesh.yml", extravars=rotate)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    new_blob = public_blob(lab, "spark1")
    assert new_blob != current and public_blob(lab, "spark2") == new_blob
    assert f"was replaced by {PublicKey.parse(f'ssh-ed25519 {new_blob}').fingerprint}" in flat(result.stdout)
    for node in NODES:
        assert not [line for line in authorized(lab, node) if current in line]
        assert by_name(lab, node) == other(node)


def test_a_node_that_cannot_take_the_new_key_stops_the_rotation_and_the_old_key_stays(lab: Lab) -> None:
    current = public_blob(lab, "spark1")
    before = {node: authorized(lab, node) for node in NODES}
    locked = lab.paths.node_root_home("spark2") / ".ssh" / "authorized_keys"
    subprocess.run(["chattr", "+i", str(locked)], check=True)
    try:
        result = sparkctl(lab, "keys", "rotate")
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    said = flat(result.stderr)
    assert result.returncode == 1, result.stderr[-4000:]
    assert "Rotating the cluster key stopped: spark2 failed or became unreachable" in said, said[-3000:]
    assert "spark1 cannot SSH to spark2 with the new cluster key" in said
    assert "stays authorized and in use on every Spark" in said
    assert "Traceback" not in result.stderr
    for node in NODES:
        assert public_blob(lab, node) == current, f"{node} no longer holds the key in use"
        assert authorized(lab, node) == before[node], f"{node}: the new key was not withdrawn"
        assert by_name(lab, node) == other(node)
        assert login_with(lab, node, KEY) == (0, "root"), node
    assert lab.sh("spark1", "ls", f"{KEY}.new", check=False).returncode != 0

    # Fixed, the next rotation goes through and clears what the stopped one left on spark2.
    again = sparkctl(lab, "keys", "rotate")
    assert again.returncode == 0, again.stderr[-4000:]
    assert public_blob(lab, "spark2") != current
    for node in NODES:
        assert lab.sh(node, "ls", f"{KEY}.new", check=False).returncode != 0
        assert by_name(lab, node) == other(node)
