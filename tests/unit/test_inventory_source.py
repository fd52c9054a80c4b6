"""The default inventory: found where Ansible users keep it, in their order, and the same one Ansible reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sparkctl.cli import cli
from sparkctl.errors import InputError
from sparkctl.inventory_source import ansible_config, choose

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir(mode=0o755)
    return path


def test_the_option_wins_over_everything(cwd: Path, home: Path) -> None:
    chosen = choose(Path("mine"), {"SPARKCTL_INVENTORY": "a", "ANSIBLE_INVENTORY": "b"}, cwd, home)
    assert (chosen.path, chosen.source) == (Path("mine"), "--inventory")


def test_sparkctl_variable_then_ansible_variable(cwd: Path, home: Path) -> None:
    both = choose(None, {"SPARKCTL_INVENTORY": "a", "ANSIBLE_INVENTORY": "b"}, cwd, home)
    assert (both.path, both.source) == (cwd / "a", "SPARKCTL_INVENTORY")
    ansible = choose(None, {"ANSIBLE_INVENTORY": "/srv/cluster"}, cwd, home)
    assert (ansible.path, ansible.source) == (Path("/srv/cluster"), "ANSIBLE_INVENTORY")


def test_ansible_cfg_setting_is_relative_to_the_config_file(cwd: Path, home: Path, tmp_path: Path) -> None:
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    (config_dir / "ansible.cfg").write_text("[defaults]\ninventory = clusters/lab  ; ours\n", encoding="utf-8")
    chosen = choose(None, {"ANSIBLE_CONFIG": str(config_dir / "ansible.cfg")}, cwd, home)
    assert chosen.path == config_dir / "clusters/lab"
    assert chosen.source == f"ansible.cfg {config_dir / 'ansible.cfg'}"


def test_ansible_search_order_for_the_config_file(cwd: Path, home: Path) -> None:
    (home / ".ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    assert ansible_config({}, cwd, home) == home / ".ansible.cfg"
    (cwd / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    assert ansible_config({}, cwd, home) == cwd / "ansible.cfg"
    os.chmod(cwd, 0o777)  # anyone could have put it there: Ansible ignores it, and so do we
    assert ansible_config({}, cwd, home) == home / ".ansible.cfg"


def test_local_inventory_directory_last(cwd: Path, home: Path) -> None:
    (cwd / "inventory").mkdir()
    chosen = choose(None, {}, cwd, home)
    assert (chosen.path, chosen.source) == (Path("inventory"), "./inventory")


def test_several_inventories_are_refused_with_what_to_do(cwd: Path, home: Path) -> None:
    with pytest.raises(InputError, match="ANSIBLE_INVENTORY: lists 2 inventories .* pass the cluster's inventory"):
        choose(None, {"ANSIBLE_INVENTORY": "a,b"}, cwd, home)


def test_none_found_says_how_to_make_one(cwd: Path, home: Path) -> None:
    with pytest.raises(InputError, match=r"no inventory found .* `sparkctl init ADDRESS\.\.\.`"):
        choose(None, {}, cwd, home)


def test_ansible_itself_reads_the_same_inventory_from_the_repository_config(home: Path) -> None:
    """Plain ansible-playbook from the repository root and sparkctl must find the same cluster."""
    ours = choose(None, {}, REPO, home)
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-config"), "dump", "--only-changed", "--format", "json"],
        cwd=REPO, capture_output=True, text=True, check=True,
        env={"PATH": os.environ["PATH"], "HOME": str(home)},
    )
    settings = {item["name"]: item["value"] for item in json.loads(shown.stdout) if "name" in item}
    assert [Path(p) for p in settings["DEFAULT_HOST_LIST"]] == [(REPO / ours.path)]


def test_every_command_says_which_inventory_it_used(tmp_path: Path) -> None:
    inventory = tmp_path / "cluster"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(
        "all:\n  children:\n    sparks:\n      hosts:\n        spark1: {ansible_host: 192.168.1.101}\n"
        "        spark2: {ansible_host: 192.168.1.102}\n", encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["plan", "--json"], env={"SPARKCTL_INVENTORY": str(inventory)})
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == f"inventory {inventory} (from SPARKCTL_INVENTORY)"

    assert json.loads(result.stdout)["inventory"] == {"path": str(inventory), "source": "SPARKCTL_INVENTORY"}
