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
from sparkctl.errors import EnvironmentProblem, InputError


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


def test_become_is_read_as_ansible_reads_it() -> None:
    assert _target().become is None
    assert _target(ansible_become="no").become is None
    plain = _target(ansible_become=True)
    assert plain.become == ssh.Become(user="root", password=None)
    vaulted = _target(ansible_become="yes", ansible_become_user="svc", ansible_become_pass="pw 1")
    assert vaulted.become == ssh.Become(user="svc", password="pw 1")
    assert "pw 1" not in repr(vaulted)  # targets end up in messages and logs; the password never does


def test_become_other_than_sudo_is_refused_as_bad_input() -> None:
    with pytest.raises(InputError, match="ansible_become_method: is su for spark1"):
        _target(ansible_become=True, ansible_become_method="su")


def test_sudo_without_a_password_never_waits_for_one() -> None:
    remote = ssh.Become().wrap(["id", "-u"], "m")
    assert remote == ["sudo", "-H", "-n", "-u", "root", "--", "id", "-u"] and ssh.Become().preamble("m") == ""


def test_the_sudo_password_goes_on_stdin_only_and_the_command_starts_after_the_marker() -> None:
    become = ssh.Become(password="s3cret")
    remote = become.wrap(["python3", "-", "x"], "sparkctl-m")
    argv = ssh.command(ssh.SSHTarget("spark1", "h", user="admin", become=become), remote)
    assert not any("s3cret" in arg for arg in argv)
    assert remote[:8] == ["sudo", "-H", "-S", "-p", "", "-u", "root", "--"]
    assert become.preamble("sparkctl-m") == "s3cret\nsparkctl-m\n"
    # What the node's sh does with that stdin, whether sudo took the password line or not (NOPASSWD):
    script, marker, *command = remote[10:]
    for stdin in ("s3cret\nsparkctl-m\nbody\n", "sparkctl-m\nbody\n"):
        done = subprocess.run(["sh", "-c", script, marker, "sh", "-c", "cat; echo \" $0\"", "arg0"],
                              input=stdin, capture_output=True, text=True, check=True)
        assert done.stdout == "body\n arg0\n"
    assert command == ["python3", "-", "x"]


@pytest.mark.parametrize(("stderr", "says"), [
    ("sudo: a password is required\n", "the inventory gives none"),
    ("Sorry, try again.\nsudo: 3 incorrect password attempts\n", "not that user's password"),
    ("admin is not in the sudoers file.  This incident will be reported.\n", "may not use sudo"),
])
def test_what_sudo_refused_is_said_and_a_failing_command_is_not_mistaken_for_it(stderr: str, says: str) -> None:
    target = ssh.SSHTarget("spark1", "h", user="admin", become=ssh.Become(password="x"))
    problem = ssh.sudo_failure(target, subprocess.CompletedProcess([], 1, "", stderr))
    assert problem is not None and says in str(problem) and "nothing was run" in str(problem)
    assert ssh.sudo_failure(target, subprocess.CompletedProcess([], 1, "", "ip: a password is required\n")) is None
    assert ssh.sudo_failure(ssh.SSHTarget("spark1", "h"), subprocess.CompletedProcess([], 1, "", stderr)) is None


def test_the_host_key_probe_runs_no_sudo(monkeypatch: pytest.MonkeyPatch) -> None:
    """It checks the SSH handshake only: a sudo there would cost a password prompt's worth of work per node."""
    seen: list[list[str]] = []

    def fake(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake)
    target = ssh.SSHTarget("spark1", "h", user="admin", become=ssh.Become(password="x"))
    assert ssh.changed_host_keys([target]) == []
    assert seen and seen[0][-1] == "true"
