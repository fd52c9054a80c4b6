"""A refused SSH host key is reported as one message naming the node, the known_hosts file and the fix.

The stderr below is what OpenSSH prints when a lab node's key was regenerated; Ansible folds the same
text onto one line in an UNREACHABLE result. No network: `ssh` is a script where one is needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkctl import ssh
from sparkctl.errors import EnvironmentProblem
from sparkctl.provisioning import host_keys

CHANGED = """\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:4hBQWH1C/EQF8xb/d/TdmH4lr9VRwt3g8mKONbJg5Ho.
Please contact your system administrator.
Add correct host key in /srv/cluster/known hosts to get rid of this message.
Offending ED25519 key in /srv/cluster/known hosts:3
  remove with:
  ssh-keygen -f "/srv/cluster/known hosts" -R "198.18.5.11"
Host key for 198.18.5.11 has changed and you have requested strict checking.
Host key verification failed.
"""
UNKNOWN = ("No ED25519 host key is known for 198.18.5.11 and you have requested strict checking.\n"
           "Host key verification failed.\n")
ANSIBLE_UNREACHABLE = (
    'Task failed: Data could not be sent to remote host "198.18.5.11". Make sure this host can be reached '
    "over ssh: " + " ".join(CHANGED.split())
)
HOSTVARS = {
    "spark1": {"ansible_host": "198.18.5.11", "ansible_ssh_common_args": "-o UserKnownHostsFile=/srv/kh"},
    "spark2": {"ansible_host": "198.18.5.12", "ansible_port": 2222},
}


def _target(name: str = "spark1") -> ssh.SSHTarget:
    return ssh.SSHTarget.from_hostvars(name, HOSTVARS[name])


@pytest.mark.parametrize("stderr", [CHANGED, " ".join(CHANGED.split())], ids=["ssh", "folded by ansible"])
def test_a_changed_key_names_the_node_the_file_and_how_to_accept_it(stderr: str) -> None:
    problem = ssh.ssh_failure(_target(), 255, stderr)
    assert isinstance(problem, ssh.HostKeyProblem) and problem.changed and problem.exit_code == 2
    text = str(problem)
    assert text.startswith("spark1 (root@198.18.5.11:22): ")
    assert "host key has changed since it was recorded in the known_hosts file /srv/cluster/known hosts (line 3)" in text
    assert "nothing was run on the node" in text
    assert "It now presents the ED25519 key SHA256:4hBQWH1C/EQF8xb/d/TdmH4lr9VRwt3g8mKONbJg5Ho." in text
    assert "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the node's console" in text
    assert "`ssh-keygen -R 198.18.5.11 -f '/srv/cluster/known hosts'`" in text
    assert "`ssh-keyscan -p 22 198.18.5.11 >> '/srv/cluster/known hosts'`" in text


def test_an_unknown_key_names_the_inventorys_known_hosts_and_the_port() -> None:
    problem = ssh.ssh_failure(_target(), 255, UNKNOWN)
    assert isinstance(problem, ssh.HostKeyProblem) and not problem.changed
    assert "no host key for 198.18.5.11 is recorded in the known_hosts file /srv/kh" in str(problem)
    other = ssh.ssh_failure(_target("spark2"), 255, UNKNOWN.replace("198.18.5.11", "[198.18.5.12]:2222"))
    assert isinstance(other, ssh.HostKeyProblem)
    assert "[198.18.5.12]:2222" in str(other) and "ssh-keyscan -p 2222 198.18.5.12" in str(other)
    assert str(Path("~/.ssh/known_hosts").expanduser()) in str(other)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("-o UserKnownHostsFile=/a/kh", ["/a/kh"]),
        ("-oUserKnownHostsFile=/a/kh -o StrictHostKeyChecking=yes", ["/a/kh"]),
        ("-o 'UserKnownHostsFile /a/kh /b/kh'", ["/a/kh", "/b/kh"]),
        ("-o StrictHostKeyChecking=yes", [str(Path("~/.ssh/known_hosts").expanduser())]),
    ],
)
def test_known_hosts_files_are_read_from_the_ssh_options(args: str, expected: list[str]) -> None:
    target = ssh.SSHTarget.from_hostvars("spark1", {"ansible_ssh_common_args": args})
    assert ssh.known_hosts_files(target) == expected


def test_ansibles_unreachable_dump_becomes_sparkctls_message() -> None:
    explained = host_keys.explain_unreachable(
        HOSTVARS, {"spark1": ANSIBLE_UNREACHABLE, "spark2": "Failed to connect: Connection timed out"})
    assert list(explained) == ["spark1"]  # other unreachable nodes keep Ansible's own words
    assert "ssh-keygen -R 198.18.5.11" in explained["spark1"].message
    assert "@@@" not in explained["spark1"].message


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, ["spark1", "spark2", "spark3"]),
        ("spark2", ["spark2"]),
        ("spark1,spark3", ["spark1", "spark3"]),
        ("spark[12]*", ["spark1", "spark2", "spark3"]),  # left to Ansible: every node is checked
        ("spark*:!spark2", ["spark1", "spark2", "spark3"]),
        ("sparks", ["spark1", "spark2", "spark3"]),
    ],
)
def test_the_host_key_check_covers_at_least_the_limited_hosts(limit: str | None, expected: list[str]) -> None:
    assert host_keys.selected(["spark1", "spark2", "spark3"], limit) == expected


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `ssh` that refuses the host key of 198.18.5.11 as changed, and of anything with 'new' as unknown."""
    changed = tmp_path / "changed.txt"
    changed.write_text(CHANGED)
    script = tmp_path / "ssh"
    script.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do last2="$last1"; last1="$arg"; done\n'
        f'case "$last2" in 198.18.5.11) cat {changed} >&2; exit 255;; esac\n'
        'echo "$last2" >> "$0.log"\n'
        "exit 0\n"
    )
    script.chmod(0o755)
    monkeypatch.setattr(ssh, "SSH_BINARY", str(script))
    return script


def test_provision_refuses_before_ansible_when_a_key_changed(fake_ssh: Path) -> None:
    with pytest.raises(ssh.HostKeyProblem) as caught:
        host_keys.refuse_changed_host_keys(HOSTVARS, ["spark1", "spark2"])
    assert str(caught.value).startswith("spark1 (root@198.18.5.11:22): ")
    assert fake_ssh.with_name("ssh.log").read_text().split() == ["198.18.5.12"]
    host_keys.refuse_changed_host_keys(HOSTVARS, ["spark2"])  # the other node alone is fine


def test_several_changed_keys_are_named_together(fake_ssh: Path) -> None:
    hostvars = {**HOSTVARS, "spark3": {"ansible_host": "198.18.5.11", "ansible_port": 2200}}
    with pytest.raises(EnvironmentProblem) as caught:
        host_keys.refuse_changed_host_keys(hostvars, ["spark1", "spark2", "spark3"])
    text = str(caught.value)
    assert text.startswith("the SSH host keys of spark1, spark3 have changed; nothing was run on any node")
    assert "- spark1 (root@198.18.5.11:22)" in text and "- spark3 (root@198.18.5.11:2200)" in text
