"""The on-node SSH check: a new key is tried alone, host keys checked, every peer at once, one verdict each."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from sparkctl.node import ssh_mesh

PEER = {"name": "spark2", "address": "192.168.1.102", "port": 2222}
ME = pwd.getpwuid(os.geteuid()).pw_name


def test_a_given_key_is_tried_alone_with_no_config_agent_or_shared_connection() -> None:
    argv = ssh_mesh.ssh_argv(PEER, "root", "/root/.ssh/k.new", "/root/.ssh/known_hosts_sparkctl", 5)
    assert argv[:3] == ["ssh", "-F", "none"]
    options = [argv[i + 1] for i, word in enumerate(argv) if word == "-o"]
    for option in ("BatchMode=yes", "IdentitiesOnly=yes", "IdentityAgent=none", "IdentityFile=/root/.ssh/k.new",
                   "PreferredAuthentications=publickey", "UserKnownHostsFile=/root/.ssh/known_hosts_sparkctl",
                   "GlobalKnownHostsFile=/dev/null", "StrictHostKeyChecking=yes", "HostKeyAlias=spark2",
                   "ControlMaster=no", "ControlPath=none", "ConnectTimeout=5"):
        assert option in options, option
    assert [o for o in options if o.startswith("IdentityFile=")] == ["IdentityFile=/root/.ssh/k.new"]
    assert argv[-7:] == ["-p", "2222", "-l", "root", "--", "192.168.1.102", "true"]


def test_without_a_key_the_peer_is_reached_by_name_through_the_users_config() -> None:
    argv = ssh_mesh.ssh_argv(PEER, "root", None, None, 7)
    assert argv == ["ssh", "-n", "-o", "BatchMode=yes", "-o", "ConnectTimeout=7", "--", "spark2", "true"]


def test_a_given_key_needs_the_clusters_known_hosts() -> None:
    with pytest.raises(ValueError, match="known_hosts"):
        ssh_mesh.ssh_argv(PEER, "root", "/k", None, 5)


def test_the_check_runs_as_the_mesh_user() -> None:
    assert ssh_mesh.as_user(["ssh", "x"], ME) == ["ssh", "x"]
    other = "nobody" if ME != "nobody" else "root"
    assert ssh_mesh.as_user(["ssh", "x"], other) == ["runuser", "-u", other, "--", "ssh", "x"]


def test_every_peer_gets_a_verdict_in_order_with_what_ssh_said_last() -> None:
    peers = [{"name": f"spark{i}", "address": f"10.0.0.{i}", "port": 22} for i in range(2, 6)]

    def run(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        assert timeout > 5
        if "10.0.0.3" in argv:
            return 255, "", "debug noise\nroot@10.0.0.3: Permission denied (publickey).\n\n"
        if "10.0.0.5" in argv:
            return 255, "", "Host key verification failed.\n"
        return 0, "", ""

    verdicts = ssh_mesh.check_peers(peers, ME, "/k", "/kh", 5, run)
    assert [v["name"] for v in verdicts] == ["spark2", "spark3", "spark4", "spark5"]
    assert [v["ok"] for v in verdicts] == [True, False, True, False]
    assert verdicts[1]["error"] == "root@10.0.0.3: Permission denied (publickey)."
    assert verdicts[3] == {"name": "spark5", "ok": False, "rc": 255, "error": "Host key verification failed."}
    assert ssh_mesh.check_peers([], ME, run=run) == []


def test_the_module_reports_a_peer_that_does_not_answer(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    bin_dir = Path(sys.executable).parent
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    args = json.dumps({"peers": [{"name": "nobody-home", "address": "127.0.0.1", "port": 1}], "user": ME,
                       "identity": str(key), "known_hosts": str(known_hosts), "timeout": 2})
    env = {"ANSIBLE_CONFIG": str(repo / "ansible.cfg"), "PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run(
        [str(bin_dir / "ansible"), "-i", "localhost,", "localhost", "-c", "local", "-m", "sparkctl_ssh_mesh_check",
         "-a", args, "-e", f"ansible_python_interpreter={sys.executable}", "--tree", str(tmp_path / "tree")],
        capture_output=True, text=True, timeout=120, env=env, cwd=repo, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads((tmp_path / "tree" / "localhost").read_text())
    assert verdict["changed"] is False
    [peer] = verdict["peers"]
    assert peer["name"] == "nobody-home" and peer["ok"] is False and peer["rc"] == 255
    assert "Connection refused" in peer["error"], peer
