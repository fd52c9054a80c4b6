"""sparkctl.ssh without a network: the argv it builds and how SSH's own failures are reported.

These need no root and no lab (no `lab` mark); the same layer is exercised for real against lab
nodes in test_lab_direct.py.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from sparkctl import ssh
from sparkctl.errors import EnvironmentProblem


def _target(**overrides: object) -> ssh.SSHTarget:
    hostvars = {
        "ansible_host": "198.18.5.11",
        "ansible_user": "admin",
        "ansible_port": 2222,
        "ansible_ssh_private_key_file": "/keys/id",
        "ansible_ssh_common_args": "-o UserKnownHostsFile='/k h/known' -o StrictHostKeyChecking=no",
        **overrides,
    }
    return ssh.SSHTarget.from_hostvars("spark1", hostvars)


def test_from_hostvars_reads_what_ansible_reads() -> None:
    target = _target()
    assert target == ssh.SSHTarget(
        name="spark1", address="198.18.5.11", user="admin", port=2222, identity_file="/keys/id",
        options=("-o", "UserKnownHostsFile=/k h/known", "-o", "StrictHostKeyChecking=no"),
    )


def test_from_hostvars_defaults_to_the_inventory_name_root_and_port_22() -> None:
    target = ssh.SSHTarget.from_hostvars("spark9", {})
    assert (target.address, target.user, target.port, target.identity_file, target.options) == (
        "spark9", "root", 22, None, (),
    )


def test_command_checks_host_keys_and_cannot_be_overridden_by_the_inventory() -> None:
    argv = ssh.command(_target(), ["cat", "/sys/class/net/enp1s0f0np0/carrier"])
    assert argv[0] == "ssh"
    options = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    assert options.index("StrictHostKeyChecking=yes") < options.index("StrictHostKeyChecking=no")
    assert "BatchMode=yes" in options
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "admin"
    assert argv[argv.index("-i") + 1] == "/keys/id"
    assert argv[-3:] == ["--", "198.18.5.11", "cat /sys/class/net/enp1s0f0np0/carrier"]


def test_remote_command_is_quoted_for_the_remote_shell() -> None:
    argv = ssh.command(_target(), ["sh", "-c", "echo $HOME; ls 'a b'"])
    assert shlex.split(argv[-1]) == ["sh", "-c", "echo $HOME; ls 'a b'"]


def test_trust_on_first_use_only_when_asked() -> None:
    target = ssh.SSHTarget.from_hostvars("spark1", {"ansible_host": "h"}, trust_on_first_use=True)
    assert "StrictHostKeyChecking=accept-new" in ssh.command(target, ["true"])
    assert "StrictHostKeyChecking=accept-new" not in ssh.command(_target(), ["true"])


def test_start_forces_a_tty_so_the_remote_side_gets_a_hangup() -> None:
    assert "-tt" in ssh.command(_target(), ["iperf3", "-s"], tty=True)
    assert "-tt" not in ssh.command(_target(), ["iperf3", "-s"])


@pytest.mark.parametrize(
    ("stderr", "words"),
    [
        ("Host key verification failed.\r\n", "host key verification failed"),
        ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\n", "host key verification failed"),
        ("No ED25519 host key is known for 198.18.5.11 and you have requested strict checking.\n",
         "host key verification failed"),
        ("root@198.18.5.11: Permission denied (publickey).\n", "login was refused"),
        ("ssh: connect to host 198.18.5.11 port 2222: Connection refused\n", "unreachable"),
        ("ssh: connect to host 198.18.5.11 port 2222: No route to host\n", "unreachable"),
    ],
)
def test_ssh_failures_name_the_host_and_the_fix(stderr: str, words: str) -> None:
    problem = ssh.ssh_failure(_target(), 255, stderr)
    assert isinstance(problem, EnvironmentProblem)
    assert words in str(problem) and "spark1" in str(problem) and "198.18.5.11" in str(problem)


def test_an_exit_status_of_the_remote_command_is_not_an_ssh_failure() -> None:
    assert ssh.ssh_failure(_target(), 1, "") is None
    assert ssh.ssh_failure(_target(), 255, "my tool failed its own way\n") is None


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `ssh` that records its argv and stdin, then behaves as $FAKE_SSH_* say."""
    script = tmp_path / "ssh"
    script.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$@" > "$0.argv"\n'
        'cat > "$0.stdin"\n'
        'printf "%s" "$FAKE_SSH_OUT"\n'
        'printf "%s" "$FAKE_SSH_ERR" >&2\n'
        'exit "${FAKE_SSH_RC:-0}"\n'
    )
    script.chmod(0o755)
    monkeypatch.setattr(ssh, "SSH_BINARY", str(script))
    return script


def test_run_passes_argv_and_input(fake_ssh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SSH_OUT", "ok")
    result = ssh.run(_target(), ["tee", "/etc/x"], input="payload")
    assert result.stdout == "ok" and result.returncode == 0
    assert fake_ssh.with_name("ssh.stdin").read_text() == "payload"
    assert fake_ssh.with_name("ssh.argv").read_text().splitlines()[-1] == "tee /etc/x"


def test_run_with_check_raises_on_a_failed_remote_command(
    fake_ssh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SSH_RC", "3")
    monkeypatch.setenv("FAKE_SSH_ERR", "no such file")
    assert ssh.run(_target(), ["false"]).returncode == 3
    with pytest.raises(ssh.RemoteCommandFailed, match="spark1: `false` exited 3: no such file"):
        ssh.run(_target(), ["false"], check=True)


def test_run_raises_environment_problem_when_ssh_itself_fails(
    fake_ssh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SSH_RC", "255")
    monkeypatch.setenv("FAKE_SSH_ERR", "Host key verification failed.\n")
    with pytest.raises(EnvironmentProblem, match="known_hosts"):
        ssh.run(_target(), ["true"])


def test_run_times_out_with_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = tmp_path / "ssh"
    slow.write_text("#!/bin/sh\nexec sleep 5\n")
    slow.chmod(0o755)
    monkeypatch.setattr(ssh, "SSH_BINARY", str(slow))
    with pytest.raises(EnvironmentProblem, match="did not finish within 0.2 s"):
        ssh.run(_target(), ["true"], timeout=0.2)


def test_missing_client_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh, "SSH_BINARY", "/nonexistent/ssh")
    with pytest.raises(EnvironmentProblem, match="openssh-client"):
        ssh.run(_target(), ["true"])


def test_start_returns_a_process_the_caller_ends(fake_ssh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SSH_OUT", "listening")
    process = ssh.start(_target(), ["iperf3", "-s"])
    out, _ = process.communicate(timeout=10)
    assert out == "listening" and process.returncode == 0
    assert "-tt" in fake_ssh.with_name("ssh.argv").read_text().splitlines()
    assert isinstance(process, subprocess.Popen)
