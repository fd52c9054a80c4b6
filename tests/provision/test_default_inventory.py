"""The commands people type first, with no --inventory: the lab's inventory found as the default.

One lab, in order: `sparkctl provision --topology direct` with SPARKCTL_INVENTORY set, `sparkctl
verify-link` from a directory whose ./inventory is the lab's, and plain `ansible-playbook
playbooks/site.yml` with no -i (ANSIBLE_INVENTORY, which Ansible reads itself).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labkit import ANSIBLE_PLAYBOOK, REPO, SPARKCTL, Lab, running_lab
from tests.provision.provkit import assert_fabric_as_planned, recap

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, nodes=2, topology="direct", prefix="di") as made:
        yield made


@pytest.fixture
def home() -> Iterator[Path]:
    """A HOME of its own (no ~/.ansible.cfg of the user's), short enough for ssh's control sockets in it."""
    with tempfile.TemporaryDirectory(prefix="di", dir="/tmp") as directory:
        yield Path(directory)


def _env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any inventory or config setting of the user's."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPARKCTL_INVENTORY", "ANSIBLE_INVENTORY", "ANSIBLE_CONFIG")}
    return {**env, "HOME": str(home), **extra}


def test_provision_as_typed_with_the_inventory_in_the_environment(lab: Lab, tmp_path: Path, home: Path) -> None:
    result = subprocess.run(
        [SPARKCTL, "provision", "--topology", "direct"], cwd=tmp_path,
        env=_env(home, SPARKCTL_INVENTORY=str(lab.inventory)),
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.splitlines()[0] == f"inventory {lab.inventory} (from SPARKCTL_INVENTORY)"
    assert_fabric_as_planned(lab)


def test_verify_link_as_typed_from_a_directory_holding_the_inventory(lab: Lab, tmp_path: Path, home: Path) -> None:
    (tmp_path / "inventory").symlink_to(lab.inventory)
    result = subprocess.run([SPARKCTL, "verify-link"], cwd=tmp_path, env=_env(home),
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stderr.splitlines()[0] == "inventory inventory (from ./inventory)"


def test_plain_ansible_playbook_without_inventory_option(lab: Lab, home: Path) -> None:
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "playbooks/site.yml"], cwd=REPO,
        env=_env(home, ANSIBLE_INVENTORY=str(lab.inventory), ANSIBLE_NOCOLOR="1"),
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert {host: stats["changed"] for host, stats in recap(result.stdout).items()} == {"spark1": 0, "spark2": 0}
