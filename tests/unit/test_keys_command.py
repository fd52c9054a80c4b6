"""`sparkctl keys rotate`: the inventory is checked first, then the one mesh playbook runs with the rotation on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sparkctl.cli import main
from sparkctl.provisioning import runner, session
from sparkctl.provisioning.events import HostStats, Recap
from tests.unit.conftest import InventoryWriter

CLI = [sys.executable, "-m", "sparkctl"]


def sparkctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "200"})


def test_keys_rotate_is_a_listed_command() -> None:
    listed = sparkctl("--help")
    assert listed.returncode == 0 and "keys" in listed.stdout
    shown = sparkctl("keys", "rotate", "--help")
    assert shown.returncode == 0 and "--inventory" in shown.stdout and "--check" in shown.stdout


def test_rotation_set_in_the_inventory_is_refused_naming_file_key_and_fix(write_inventory: InventoryWriter) -> None:
    inventory = write_inventory(2, sparkctl_ssh_mesh_rotate=True)
    for argv in (["keys", "rotate"], ["provision"]):
        result = sparkctl(*argv, "--inventory", str(inventory))
        said = " ".join(result.stderr.split())
        assert result.returncode == 2, (argv, result.stderr)
        assert "Traceback" not in result.stderr and "equivalent:" not in result.stderr
        assert f"{inventory / 'group_vars' / 'sparks.yml'}: sparkctl_ssh_mesh_rotate:" in said, said
        assert "remove it from the inventory and run `sparkctl keys rotate`" in said, said


def test_bad_inventory_exits_2_before_any_node_is_touched(write_inventory: InventoryWriter, tmp_path: Path) -> None:
    result = sparkctl("keys", "rotate", "--inventory", str(write_inventory(2, sparkctl_mtu=20000)))
    assert result.returncode == 2 and "sparkctl_mtu" in result.stderr and "out of range" in result.stderr
    assert "equivalent:" not in result.stderr and "Traceback" not in result.stderr
    missing = sparkctl("keys", "rotate", "--inventory", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr


@pytest.mark.parametrize("check", [False, True])
def test_rotate_runs_the_mesh_playbook_with_the_rotation_on(
    write_inventory: InventoryWriter, monkeypatch: pytest.MonkeyPatch, check: bool,
) -> None:
    seen: dict[str, Any] = {}

    def fake(playbook_run: runner.PlaybookRun, hosts: list[str], hostvars: Any, title: str,
             err: Any) -> runner.RunOutcome:
        seen.update(run=playbook_run, hosts=hosts, title=title)
        return runner.RunOutcome("successful", 0, Recap({h: HostStats(ok=1) for h in hosts}), {}, {})

    monkeypatch.setattr(session, "run_and_report", fake)
    inventory = write_inventory(2)
    main(["keys", "rotate", "--inventory", str(inventory), *(["--check"] if check else [])])
    playbook_run = seen["run"]
    assert playbook_run.playbook == runner.SSH_MESH_PLAYBOOK and playbook_run.playbook.is_file()
    assert playbook_run.extravars == {"sparkctl_ssh_mesh_rotate": True}
    assert playbook_run.limit is None and playbook_run.check is check
    assert seen["hosts"] == ["spark1", "spark2"] and seen["title"] == "sparkctl keys rotate"
    command = playbook_run.equivalent_command()
    assert command.endswith("playbooks/ssh_mesh.yml -e '{\"sparkctl_ssh_mesh_rotate\": true}'"
                            + (" --check --diff" if check else "")), command
