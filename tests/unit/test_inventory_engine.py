"""sparkctl reads what `ansible-playbook -i DIR` reads: INI hosts, vault files and inline `!vault` values,
with every error naming the file that holds the bad value."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from ansible.parsing.vault import VaultLib, VaultSecret  # type: ignore[import-untyped]

from sparkctl.cluster import load_cluster
from sparkctl.inventory import load_inventory
from sparkctl.provisioning.runner import PlaybookRun
from sparkctl.ssh import SSHTarget
from sparkctl.vault import VaultPasswords
from tests.unit.conftest import InventoryWriter

CLI = [sys.executable, "-m", "sparkctl"]
PASSWORD = "correct horse"


def run_plan(inventory: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "plan", "--inventory", str(inventory), "--json", *extra], capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, **(env or {})})


def encrypted(text: str) -> str:
    return str(VaultLib([("default", VaultSecret(PASSWORD.encode()))]).encrypt(text).decode())


def write_ini(root: Path, name: str = "hosts") -> Path:
    """The INI twin of conftest's two-Spark inventory."""
    (root / "group_vars").mkdir(parents=True)
    (root / name).write_text(textwrap.dedent("""\
        [sparks]
        spark1 ansible_host=192.168.1.101
        spark2 ansible_host=192.168.1.102
        """))
    (root / "group_vars" / "sparks.yml").write_text("sparkctl_topology: bond\nsparkctl_mtu: 9000\n")
    return root


def write_vaulted(root: Path) -> Path:
    """Two Sparks whose group_vars file is vault-encrypted and whose spark1 has an inline `!vault` user."""
    (root / "group_vars").mkdir(parents=True)
    (root / "host_vars").mkdir()
    (root / "hosts.yml").write_text("all:\n  children:\n    sparks:\n      hosts:\n"
                                    "        spark1: {ansible_host: 192.168.1.101}\n"
                                    "        spark2: {ansible_host: 192.168.1.102}\n")
    (root / "group_vars" / "sparks.yml").write_text(encrypted("sparkctl_topology: bond\nsparkctl_mtu: 4000\n"))
    inline = textwrap.indent(encrypted("fabric-admin"), "  ")
    (root / "host_vars" / "spark1.yml").write_text(f"ansible_user: !vault |\n{inline}\n")
    return root


def test_ini_inventory_plans_like_its_yaml_twin(write_inventory: InventoryWriter, tmp_path: Path) -> None:
    yaml_twin = load_cluster(write_inventory(2, sparkctl_topology="bond", sparkctl_mtu=9000))
    ini = load_cluster(write_ini(tmp_path / "ini"))
    assert ini.plan.to_dict() == yaml_twin.plan.to_dict()
    assert ini.inventory.hosts_file == tmp_path / "ini" / "hosts"


def test_plan_reads_an_ini_inventory_from_the_command_line(tmp_path: Path) -> None:
    result = run_plan(write_ini(tmp_path / "ini", "hosts.ini"))
    assert result.returncode == 0, result.stderr
    assert '"topology": "bond"' in result.stdout and '"spark2"' in result.stdout


def test_vault_file_and_inline_vault_are_read_with_the_password_file(tmp_path: Path) -> None:
    inventory = write_vaulted(tmp_path / "inv")
    password = tmp_path / "vault-pass"
    password.write_text(PASSWORD + "\n")
    cluster = load_cluster(inventory, vault=VaultPasswords(files=(password,)))
    assert cluster.settings.topology == "bond" and cluster.settings.mtu == 4000
    assert cluster.inventory.hosts["spark1"].values["ansible_user"] == "fabric-admin"
    assert run_plan(inventory, "--vault-password-file", str(password)).returncode == 0
    assert run_plan(inventory, env={"ANSIBLE_VAULT_PASSWORD_FILE": str(password)}).returncode == 0


def test_vault_without_its_password_is_refused_naming_the_file(tmp_path: Path) -> None:
    inventory = write_vaulted(tmp_path / "inv")
    result = run_plan(inventory)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{inventory / 'group_vars' / 'sparks.yml'}: cannot be decrypted" in result.stderr
    assert "--vault-password-file" in result.stderr and result.stdout == ""

    (inventory / "group_vars" / "sparks.yml").write_text("sparkctl_topology: bond\n")  # only the inline one left
    result = run_plan(inventory)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{inventory / 'host_vars' / 'spark1.yml'}:1:" in result.stderr and "ansible_user" in result.stderr
    assert "cannot be decrypted" in result.stderr


def test_wrong_password_file_is_refused(tmp_path: Path) -> None:
    inventory = write_vaulted(tmp_path / "inv")
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    result = run_plan(inventory, "--vault-password-file", str(wrong))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "decrypt" in result.stderr
    result = run_plan(inventory, "--vault-password-file", str(tmp_path / "missing"))
    assert result.returncode == 2 and f"{tmp_path / 'missing'}" in result.stderr


def test_bad_value_in_group_vars_names_that_file_and_line(tmp_path: Path) -> None:
    inventory = write_ini(tmp_path / "ini")
    (inventory / "group_vars" / "sparks.yml").write_text("sparkctl_topology: bond\nsparkctl_mtu: jumbo\n")
    result = run_plan(inventory)
    assert result.returncode == 2, result.stderr
    assert f"{inventory / 'group_vars' / 'sparks.yml'}:2: sparkctl_mtu: must be int" in result.stderr

    (inventory / "group_vars" / "sparks.yml").write_text("sparkctl_topology: bond\nsparkctl_mtu: true\n")
    result = run_plan(inventory)  # true carries no origin of its own: its key's names the file
    assert f"{inventory / 'group_vars' / 'sparks.yml'}:2: sparkctl_mtu: must be int" in result.stderr


def test_host_var_in_an_ini_file_wins_over_group_vars_and_is_named(tmp_path: Path) -> None:
    inventory = write_ini(tmp_path / "ini")
    (inventory / "hosts").write_text("[sparks]\nspark1 ansible_host=192.168.1.101\n"
                                     "spark2 ansible_host=192.168.1.102 sparkctl_mtu=1500\n")
    result = run_plan(inventory)
    assert result.returncode == 2
    assert f"{inventory / 'hosts'}:3: sparkctl_mtu: differs between spark1 and spark2" in result.stderr


def test_unreadable_hosts_file_and_missing_group_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "hosts").write_text("[sparks\nspark1 ansible_host=10.9.0.1\n")
    result = run_plan(tmp_path / "a")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'a' / 'hosts'}" in result.stderr and "not an inventory Ansible can read" in result.stderr
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "hosts").write_text("[others]\nbox ansible_host=10.9.0.1\n")
    result = run_plan(tmp_path / "b")
    assert result.returncode == 2 and "no hosts in group `sparks`" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2  # the inventory line, then the error


def test_playbook_run_gets_the_same_vault_options(tmp_path: Path) -> None:
    password = tmp_path / "vault-pass"
    run = PlaybookRun(inventory=tmp_path, vault=VaultPasswords(files=(password,), ask=True))
    command = run.equivalent_command()
    assert f"--vault-password-file {password}" in command and command.endswith("--ask-vault-pass")
    assert PlaybookRun(inventory=tmp_path).vault.prompt_answers() == {}


def test_ask_vault_pass_reads_the_password_once(tmp_path: Path) -> None:
    inventory = write_vaulted(tmp_path / "inv")
    result = subprocess.run([*CLI, "plan", "--inventory", str(inventory), "--json", "--ask-vault-pass"],
                            input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert '"topology": "bond"' in result.stdout


def test_an_inventory_script_is_read_like_ansible_reads_it(tmp_path: Path) -> None:
    script = tmp_path / "inv" / "cluster.py"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport json\nprint(json.dumps({{\n"
                      "    'sparks': {'hosts': ['spark1', 'spark2'], 'vars': {'sparkctl_mtu': 1500}},\n"
                      "    '_meta': {'hostvars': {'spark1': {'ansible_host': '192.168.1.101'},\n"
                      "                           'spark2': {'ansible_host': '192.168.1.102'}}}}))\n")
    script.chmod(0o755)
    cluster = load_cluster(script.parent)
    assert cluster.settings.mtu == 1500 and [n.name for n in cluster.settings.nodes] == ["spark1", "spark2"]


def test_the_playbook_run_opens_the_vault_with_the_same_passwords(tmp_path: Path) -> None:
    from sparkctl.provisioning import runner

    inventory = write_vaulted(tmp_path / "inv")
    password = tmp_path / "vault-pass"
    password.write_text(PASSWORD + "\n")
    playbook = tmp_path / "show.yml"
    playbook.write_text("- hosts: sparks\n  gather_facts: false\n  connection: local\n  tasks:\n"
                        "    - ansible.builtin.debug: {msg: '{{ sparkctl_mtu }}'}\n")
    for vault in (VaultPasswords(files=(password,)), VaultPasswords(ask=True, _typed=PASSWORD)):
        outcome = runner.run(runner.PlaybookRun(inventory=inventory, playbook=playbook, vault=vault), lambda _: None)
        assert (outcome.status, outcome.rc) == ("successful", 0), outcome.output_tail


def test_jinja_in_a_value_is_rendered_as_a_play_renders_it(tmp_path: Path) -> None:
    """The usual way to keep a sudo password in vault: a plain variable pointing at a vaulted one."""
    inventory = write_vaulted(tmp_path / "inv")
    inline = textwrap.indent(encrypted("s3cret"), "  ")
    (inventory / "host_vars" / "spark2.yml").write_text(
        f"vault_sudo_password: !vault |\n{inline}\n"
        "ansible_become: true\n"
        "ansible_become_password: \"{{ vault_sudo_password }}\"\n"
        "sparkctl_note: \"{{ ansible_facts.hostname }}\"\n")
    password = tmp_path / "vault-pass"
    password.write_text(PASSWORD + "\n")
    hosts = load_inventory(inventory, VaultPasswords(files=(password,))).hosts
    target = SSHTarget.from_hostvars("spark2", hosts["spark2"].values)
    assert target.become is not None and target.become.password == "s3cret"
    assert hosts["spark2"].source("ansible_become_password") == inventory / "host_vars" / "spark2.yml"
    assert hosts["spark2"].values["sparkctl_note"] == "{{ ansible_facts.hostname }}"  # facts exist in plays only
