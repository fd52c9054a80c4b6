"""A cluster reached as DGX OS sets it up: a login user with a sudo password, not root.

`sparkctl init` writes `ansible_become: true` for such a user. Here the inventory gives the sudo
password vault-encrypted and sets no `ansible_python_interpreter` (Ansible discovers it), and every
command that touches the nodes runs through sudo: provisioning (the node steps' own transport),
verify-link (peer probes need raw sockets), doctor. The lab's root login only sets the user up and
looks at the result.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.labkit import BIN, SPARKCTL, Lab, running_lab
from tests.provision.provkit import assert_fabric_as_planned

pytestmark = pytest.mark.lab

USER = "sparkadmin"
PASSWORD = "correct horse 'battery' $taple"
"""Spaces, quotes and a dollar sign: the password must reach sudo as it is, through no shell."""
VAULT_PASSWORD = "vault-pass-for-tests"
NODES = ("spark1", "spark2")


def _add_sudo_user(lab: Lab, node: str) -> None:
    """A login user that needs its password for sudo, reached with the lab's key (test scaffolding)."""
    home = f"/home/{USER}"
    lab.sh(node, "useradd", "--create-home", "--shell", "/bin/bash", USER)
    lab.sh(node, "sh", "-c", f"printf '%s:%s\\n' {USER} \"$0\" | chpasswd", PASSWORD)
    lab.sh(node, "install", "-d", "-m", "700", "-o", USER, "-g", USER, f"{home}/.ssh")
    lab.sh(node, "install", "-m", "600", "-o", USER, "-g", USER, "/root/.ssh/authorized_keys",
           f"{home}/.ssh/authorized_keys")
    lab.sh(node, "sh", "-c", f"echo '{USER} ALL=(ALL:ALL) ALL' > /etc/sudoers.d/{USER}")


def _encrypted(secret: str, vault_file: Path) -> str:
    done = subprocess.run([str(BIN / "ansible-vault"), "encrypt_string", "--vault-password-file", str(vault_file),
                           "--name", "ansible_become_password", secret],
                          capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def sudo_lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, nodes=2, topology="direct", prefix="su") as lab:
        for node in NODES:
            _add_sudo_user(lab, node)
        yield lab


def _inventory(lab: Lab, where: Path, password: str | None) -> tuple[Path, Path]:
    """The lab's inventory as the sudo user's (with `password` vault-encrypted, if given), and the vault
    password file that opens it."""
    (where / "group_vars").mkdir(parents=True)
    vault_file = where / "vault-pass"
    vault_file.write_text(VAULT_PASSWORD + "\n", encoding="utf-8")
    (where / "hosts.yml").write_text((lab.inventory / "hosts.yml").read_text(encoding="utf-8"), encoding="utf-8")
    settings = yaml.safe_load((lab.inventory / "group_vars" / "sparks.yml").read_text(encoding="utf-8"))
    del settings["ansible_python_interpreter"]
    settings.update(ansible_user=USER, ansible_become=True)
    text = yaml.safe_dump(settings) + (_encrypted(password, vault_file) if password is not None else "")
    (where / "group_vars" / "sparks.yml").write_text(text, encoding="utf-8")
    return where, vault_file


@pytest.fixture(scope="module")
def inventory(sudo_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _inventory(sudo_lab, tmp_path_factory.mktemp("sudo-inventory"), PASSWORD)


def _sparkctl(command: str, inventory: tuple[Path, Path], *extra: str,
              typed: str | None = None) -> subprocess.CompletedProcess[str]:
    where, vault_file = inventory
    return subprocess.run([SPARKCTL, command, "--inventory", str(where), "--vault-password-file", str(vault_file),
                           *extra], input=typed, capture_output=True, text=True, timeout=600, check=False)


def test_provision_as_a_sudo_user(sudo_lab: Lab, inventory: tuple[Path, Path]) -> None:
    result = _sparkctl("provision", inventory)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_fabric_as_planned(sudo_lab)
    for node in NODES:
        owner = sudo_lab.sh(node, "stat", "-c", "%U", "/etc/netplan/60-sparkctl-fabric.yaml").stdout.strip()
        assert owner == "root"
        # Ansible discovered a versioned Python (python3.11 here); the units name the one a release upgrade keeps.
        for unit in ("sparkctl-watch.service", "sparkctl-fabric-restore.service"):
            text = sudo_lab.sh(node, "cat", f"/etc/systemd/system/{unit}").stdout
            assert "ExecStart=/usr/bin/python3 -m sparkctl_node." in text, text
    assert PASSWORD not in result.stdout + result.stderr


def test_verify_link_and_doctor_run_their_node_commands_through_sudo(inventory: tuple[Path, Path]) -> None:
    verified = _sparkctl("verify-link", inventory)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    assert "all links pass" in verified.stdout
    doctor = _sparkctl("doctor", inventory)
    assert doctor.returncode == 0, doctor.stdout[-3000:] + doctor.stderr[-3000:]
    assert "no drift on spark1, spark2" in doctor.stdout
    assert PASSWORD not in verified.stdout + verified.stderr + doctor.stdout + doctor.stderr


def test_a_wrong_sudo_password_is_named_and_nothing_runs(sudo_lab: Lab, tmp_path: Path) -> None:
    wrong = _inventory(sudo_lab, tmp_path / "wrong", "not the password")
    result = _sparkctl("verify-link", wrong)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "sudo refused ansible_become_password" in result.stderr and "Traceback" not in result.stderr


def test_ask_become_pass_gives_the_password_the_inventory_lacks(sudo_lab: Lab, tmp_path: Path) -> None:
    """As ansible-playbook -K: typed once (here on stdin, as no terminal is attached), then answered to
    ansible-playbook's prompt for the playbook run and handed to sudo for sparkctl's own commands."""
    inventory = _inventory(sudo_lab, tmp_path / "no-password", None)
    refused = _sparkctl("provision", inventory)
    assert refused.returncode == 1 and "Missing sudo password" in refused.stderr
    assert "run with --ask-become-pass (-K)" in " ".join(refused.stderr.split())
    provisioned = _sparkctl("provision", inventory, "--ask-become-pass", typed=PASSWORD + "\n")
    assert provisioned.returncode == 0, provisioned.stdout[-3000:] + provisioned.stderr[-3000:]
    doctor = _sparkctl("doctor", inventory, "-K", typed=PASSWORD + "\n")
    assert doctor.returncode == 0 and "no drift on spark1, spark2" in doctor.stdout, doctor.stderr[-2000:]
    assert PASSWORD not in provisioned.stdout + provisioned.stderr + doctor.stdout + doctor.stderr
