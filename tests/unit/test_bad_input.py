"""Every class of bad input gives one message naming the file, the key and the fix, and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.conftest import InventoryWriter

CLI = [sys.executable, "-m", "sparkctl"]


def run_plan(inventory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "plan", "--inventory", str(inventory), *extra],
                          capture_output=True, text=True, timeout=60, check=False)


CASES: list[tuple[str, dict[str, object], str, str]] = [
    ("wrong CIDR", {"sparkctl_fabric_pool": "10.20.0.0/33"}, "sparkctl_fabric_pool", "not a valid network"),
    ("host bits set", {"sparkctl_fabric_pool": "10.20.0.1/16"}, "sparkctl_fabric_pool", "host bits zero"),
    ("pool too small", {"sparkctl_fabric_pool": "10.20.0.0/23"}, "sparkctl_fabric_pool", "too small"),
    ("mtu out of range", {"sparkctl_mtu": 20000}, "sparkctl_mtu", "out of range"),
    ("mtu not a number", {"sparkctl_mtu": "jumbo"}, "sparkctl_mtu", "must be int"),
    ("unknown topology", {"sparkctl_topology": "mesh"}, "sparkctl_topology", "unknown topology"),
    ("ring too small", {"sparkctl_topology": "ring"}, "sparkctl_topology", "3 to 8"),
    ("port cabled twice", {"sparkctl_cabling": ["spark1:p0 spark2:p0", "spark1:p0 spark2:p1"]},
     "sparkctl_cabling[1]", "cabled twice"),
    ("unknown node in cabling", {"sparkctl_cabling": ["spark1:p0 spark9:p0"]}, "sparkctl_cabling[0]", "spark9"),
    ("bad port", {"sparkctl_cabling": ["spark1:p2 spark2:p0"]}, "sparkctl_cabling[0]", "NODE:PORT"),
    ("overlap with management", {"sparkctl_fabric_pool": "192.168.0.0/16"}, "sparkctl_fabric_pool",
     "management address"),
    ("bad bond mode", {"sparkctl_topology": "bond", "sparkctl_bond": {"mode": "lacp"}}, "sparkctl_bond.mode",
     "not a bond mode"),
    ("storage split without storage", {"sparkctl_topology": "storage-split"}, "sparkctl_storage", "storage side"),
    ("storage halves share a subnet", {"sparkctl_topology": "storage-split", "sparkctl_storage": {
        "networks": ["10.30.0.0/24", "10.30.0.0/25"]}}, "sparkctl_storage.networks", "share a subnet"),
]


@pytest.mark.parametrize(("label", "group_vars", "key", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_group_vars(write_inventory: InventoryWriter, label: str, group_vars: dict[str, object],
                        key: str, words: str) -> None:
    inv = write_inventory(**group_vars)
    result = run_plan(inv)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(inv / "group_vars" / "sparks.yml") in result.stderr
    assert f": {key}:" in result.stderr and words in result.stderr
    assert " — " in result.stderr  # and says what to change
    assert result.stdout == ""


def test_duplicate_host_name_in_hosts_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("all:\n  children:\n    sparks:\n      hosts:\n        spark1: {ansible_host: 10.9.0.1}\n"
                     "        spark1: {ansible_host: 10.9.0.2}\n")
    result = run_plan(tmp_path)
    assert result.returncode == 2 and f"{hosts}:6:" in result.stderr
    assert "duplicate mapping key 'spark1'" in result.stderr and "Traceback" not in result.stderr


def test_duplicate_management_address(write_inventory: InventoryWriter) -> None:
    inv = write_inventory({"spark1": {"ansible_host": "10.9.0.1"}, "spark2": {"ansible_host": "10.9.0.1"}})
    result = run_plan(inv)
    assert result.returncode == 2 and "ansible_host" in result.stderr and "share the address" in result.stderr


def test_duplicate_fabric_address(write_inventory: InventoryWriter) -> None:
    inv = write_inventory(host_vars={
        "spark1": {"sparkctl_fabric_addresses": {"enp1s0f0np0": "10.20.0.2/24"}},
    })
    result = run_plan(inv)
    assert result.returncode == 2 and "10.20.0.2 is planned on both" in result.stderr
    assert str(inv / "host_vars" / "spark1.yml") in result.stderr


def test_yaml_syntax_error_names_file_and_line(write_inventory: InventoryWriter) -> None:
    inv = write_inventory()
    (inv / "group_vars" / "sparks.yml").write_text("sparkctl_mtu: 9000\nsparkctl_topology: [direct\n")
    result = run_plan(inv)
    assert result.returncode == 2 and "YAML parsing failed" in result.stderr
    assert f"{inv / 'group_vars' / 'sparks.yml'}:3:" in result.stderr and "Traceback" not in result.stderr


def test_missing_inventory_and_empty_group(tmp_path: Path) -> None:
    assert run_plan(tmp_path / "nowhere").returncode == 2
    (tmp_path / "hosts.yml").write_text("all:\n  children:\n    others:\n      hosts: {a: {}}\n")
    result = run_plan(tmp_path)
    assert result.returncode == 2 and "no hosts in group `sparks`" in result.stderr


def test_cluster_setting_that_differs_between_hosts(write_inventory: InventoryWriter) -> None:
    inv = write_inventory(host_vars={"spark2": {"sparkctl_mtu": 1500}})
    result = run_plan(inv)
    assert result.returncode == 2 and "differs between spark1 and spark2" in result.stderr
    assert str(inv / "host_vars" / "spark2.yml") in result.stderr


def test_bad_cli_topology_is_a_usage_error(write_inventory: InventoryWriter) -> None:
    result = run_plan(write_inventory(), "--topology", "mesh")
    assert result.returncode == 2 and "Traceback" not in result.stderr
