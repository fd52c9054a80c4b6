"""Hostile inventory values are refused where the inventory is read: exit 2, no traceback, no file written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.conftest import InventoryWriter

CLI = [sys.executable, "-m", "sparkctl"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def assert_refused(result: subprocess.CompletedProcess[str], key: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert key in result.stderr, result.stderr


GROUP_CASES: list[tuple[str, dict[str, object], str]] = [
    ("bootstrap interface starts a systemd line",
     {"sparkctl_bootstrap_interface": 'enP7s7"\nDefaultEnvironment="LD_PRELOAD=/tmp/x.so'},
     "sparkctl_bootstrap_interface"),
    ("bootstrap interface runs a command", {"sparkctl_bootstrap_interface": "$(touch /tmp/pwned)"},
     "sparkctl_bootstrap_interface"),
    ("bond name leaves netplan's directory",
     {"sparkctl_topology": "bond", "sparkctl_bond": {"name": "bond/../../x"}}, "sparkctl_bond"),
    ("bond monitor interval is a boolean",
     {"sparkctl_topology": "bond", "sparkctl_bond": {"mii_monitor_interval": True}}, "sparkctl_bond"),
    ("state directory is netplan's own", {"sparkctl_fabric_state_dir": "/etc/netplan"},
     "sparkctl_fabric_state_dir"),
    ("pool overlaps the management subnet", {"sparkctl_fabric_pool": "192.168.1.128/25",
                                             "sparkctl_subnet_prefix": 30}, "sparkctl_fabric_pool"),
    ("pool in loopback", {"sparkctl_fabric_pool": "127.16.0.0/16"}, "sparkctl_fabric_pool"),
    ("pool in link-local", {"sparkctl_fabric_pool": "169.254.0.0/16"}, "sparkctl_fabric_pool"),
    ("infinite link speed", {"sparkctl_link_speed_mbps": float("inf")}, "sparkctl_link_speed_mbps"),
]


@pytest.mark.parametrize(("label", "group_vars", "key"), GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_hostile_group_vars_are_refused(write_inventory: InventoryWriter, tmp_path: Path, label: str,
                                        group_vars: dict[str, object], key: str) -> None:
    out = tmp_path / "out"
    result = run("render", "--inventory", str(write_inventory(**group_vars)), "--out", str(out))
    assert_refused(result, key)
    assert not out.exists() or not any(out.rglob("*")), "render wrote files for a refused inventory"


HOST_CASES: list[tuple[str, dict[str, dict[str, object]], str]] = [
    ("newline in a host name", {"spark1\nkernel.core_pattern = |/tmp/x": {"ansible_host": "192.168.1.101"},
                                "spark2": {"ansible_host": "192.168.1.102"}}, "spark1"),
    ("host name climbs out of --out", {"..": {"ansible_host": "192.168.1.101"},
                                       "spark2": {"ansible_host": "192.168.1.102"}}, ".."),
    ("300-character host name", {"s" * 300: {"ansible_host": "192.168.1.101"},
                                 "spark2": {"ansible_host": "192.168.1.102"}}, "s" * 20),
    ("newline in ansible_host", {"spark1": {"ansible_host": "192.168.1.101\nProxyCommand sh -c 'id'"},
                                 "spark2": {"ansible_host": "192.168.1.102"}}, "ansible_host"),
    ("integer form of ansible_host", {"spark1": {"ansible_host": "3232235877"},
                                      "spark2": {"ansible_host": "192.168.1.102"}}, "ansible_host"),
    ("port that is not a number", {"spark1": {"ansible_host": "192.168.1.101", "ansible_port": "22x"},
                                   "spark2": {"ansible_host": "192.168.1.102"}}, "ansible_port"),
    ("unbalanced quote in ssh args", {"spark1": {"ansible_host": "192.168.1.101",
                                                 "ansible_ssh_common_args": "-o 'ProxyJump=x"},
                                      "spark2": {"ansible_host": "192.168.1.102"}}, "ansible_ssh_common_args"),
]


@pytest.mark.parametrize(("label", "hosts", "words"), HOST_CASES, ids=[c[0] for c in HOST_CASES])
def test_hostile_hosts_are_refused(write_inventory: InventoryWriter, tmp_path: Path, label: str,
                                   hosts: dict[str, dict[str, object]], words: str) -> None:
    out = tmp_path / "out"
    result = run("render", "--inventory", str(write_inventory(hosts)), "--out", str(out))
    assert_refused(result, words)
    assert not (tmp_path / "spark2").exists() and not (tmp_path / "netplan").exists()

