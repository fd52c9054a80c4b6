"""The roles and playbooks as files: structure, naming and the one hardware table they repeat."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkctl import hardware
from sparkctl.provisioning.runner import _environment
from tests.labkit import ANSIBLE_PLAYBOOK, REPO

ROLES = sorted(p for p in (REPO / "roles").iterdir() if p.is_dir())


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_preflight_netdev_table_matches_sparkctl_hardware() -> None:
    table = _load(REPO / "roles/sparkctl_preflight/vars/main.yml")["__sparkctl_preflight_netdev_ports"]
    expected = {dev: {"port": port, "half": half}
                for port, devs in hardware.NETDEVS.items() for half, dev in enumerate(devs)}
    assert table == expected


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_meta_argument_specs_and_defaults(role: Path) -> None:
    for name in ("meta/main.yml", "meta/argument_specs.yml", "defaults/main.yml", "tasks/main.yml"):
        assert (role / name).is_file(), f"{role.name} lacks {name}"
    assert role.name.startswith("sparkctl_")


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_default_is_documented_and_prefixed(role: Path) -> None:
    defaults = _load(role / "defaults/main.yml") or {}
    options = _load(role / "meta/argument_specs.yml")["argument_specs"]["main"]["options"] or {}
    for key, value in defaults.items():
        assert key.startswith(f"{role.name}_"), f"{role.name}: public variable {key} lacks the role prefix"
        assert key in options, f"{role.name}: {key} is not in meta/argument_specs.yml"
        if "default" in options[key]:
            assert options[key]["default"] == value, f"{role.name}: {key} default differs from argument_specs"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_internal_variables_are_prefixed(role: Path) -> None:
    path = role / "vars/main.yml"
    for key in (_load(path) or {}) if path.is_file() else {}:
        assert key.startswith(f"__{role.name}_"), f"{role.name}: internal variable {key}"


def test_no_role_ignores_errors_or_turns_off_host_key_checking() -> None:
    for path in (REPO / "roles").rglob("*.yml"):
        text = path.read_text(encoding="utf-8")
        assert "ignore_errors" not in text, path
        assert "StrictHostKeyChecking no" not in text and "StrictHostKeyChecking=no" not in text, path


def test_site_playbook_passes_syntax_check() -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "--syntax-check", "-i", str(REPO / "examples/inventory"), str(REPO / "playbooks/site.yml")],
        capture_output=True, text=True, env=env, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_provision_runs_ansible_with_host_keys_checked() -> None:
    """ansible-runner defaults ANSIBLE_HOST_KEY_CHECKING to False when the environment does not set it."""
    assert _environment()["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    config = (REPO / "ansible.cfg").read_text()
    assert "host_key_checking = True" in config
    assert "StrictHostKeyChecking=no" not in config
