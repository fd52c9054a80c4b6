"""A node whose SSH host key changed is refused by `provision` and `verify-link`, and nothing on it changes.

The lab records every node's host key in its known_hosts when it is made. Here one node gets a new
key (as after a reinstall), and both commands must stop, name the node, say the key changed and give
the commands that accept the new key deliberately; following that advice makes provisioning work.
Ansible's SSH connections get a control path of this test's own, so no ControlPersist master opened
elsewhere can hide the change.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from sparkctl import ssh
from sparkctl.errors import EnvironmentProblem
from tests.labkit import SPARKCTL, Lab, running_lab

pytestmark = pytest.mark.lab

HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"


def node_files(lab: Lab, node: str) -> dict[str, str]:
    """Everything written under the node's /etc and /root (read from the host): path -> digest or link."""
    found: dict[str, str] = {}
    for top in (lab.paths.node_etc(node), lab.paths.node_root_home(node)):
        for path in sorted(top.rglob("*")):
            key = f"{top.name}/{path.relative_to(top)}"
            if path.is_symlink():
                found[key] = f"-> {os.readlink(path)}"
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[key] = "dir"
    return found


def wait_for_new_key(lab: Lab, node: str, timeout: float = 20) -> None:
    """Until sshd, reloading, answers again: with the new key, which the lab's known_hosts refuses."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            lab.sh(node, "true")
        except ssh.HostKeyProblem as problem:
            assert problem.changed
            return
        except EnvironmentProblem:
            if time.monotonic() > deadline:
                raise
        else:
            assert time.monotonic() < deadline, f"{node} still presents its old host key"
        time.sleep(0.2)


def flat(text: str) -> str:
    return " ".join(text.split())


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SPARKCTL, *argv], capture_output=True, text=True, timeout=600, env=env, check=False)


def test_changed_host_key_is_refused_until_accepted_deliberately(lab_root: Path, tmp_path: Path) -> None:
    with running_lab(lab_root, nodes=2, topology="direct", prefix="hk") as lab:
        address = lab.state.nodes["spark1"].mgmt_address
        known_hosts = str(lab.paths.known_hosts.resolve())
        lab.sh("spark1", "sh", "-c",
               f"rm -f {HOST_KEY} {HOST_KEY}.pub && ssh-keygen -q -t ed25519 -N '' -f {HOST_KEY} "
               "&& systemctl reload ssh")
        wait_for_new_key(lab, "spark1")
        before = {node: node_files(lab, node) for node in ("spark1", "spark2")}
        control = tmp_path / "cp"
        control.mkdir()
        env = {**os.environ, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control), "COLUMNS": "200"}
        inventory = str(lab.inventory)

        for argv in (["provision", "--inventory", inventory], ["verify-link", "--inventory", inventory]):
            result = run(env, *argv)
            said = flat(result.stderr.partition("sparkctl: error:")[2])
            assert result.returncode == 2, (argv, result.stdout, result.stderr)
            assert "Traceback" not in result.stderr
            assert f"spark1 (root@{address}:22)" in said, said
            assert "host key has changed" in said and "nothing was run on the node" in said
            assert f"ssh-keygen -R {address} -f {known_hosts}" in said, said
            assert "spark2" not in said, said  # only the node at fault is named
        assert "PLAY" not in result.stdout
        assert {node: node_files(lab, node) for node in ("spark1", "spark2")} == before

        # Accepting the new key as the message says makes the node reachable again.
        advice = flat(run(env, "provision", "--inventory", inventory).stderr.partition("sparkctl: error:")[2])
        for command in (f"ssh-keygen -R {address} -f {known_hosts}",
                        f"ssh-keyscan -p 22 {address} >> {shlex.quote(known_hosts)}"):
            assert command in advice
            subprocess.run(["sh", "-c", command], check=True, capture_output=True, timeout=30)
        assert lab.sh("spark1", "hostname").stdout.strip() == "spark1"
        result = run(env, "provision", "--inventory", inventory)
        assert result.returncode == 0, result.stderr[-3000:]
