"""The CLI as a user runs it: plan (human and --json), render, init, and a fast --help."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from sparkctl.render import NETPLAN_PATH
from tests.unit.conftest import InventoryWriter

CLI = [sys.executable, "-m", "sparkctl"]


def sparkctl(*args: str) -> subprocess.CompletedProcess[str]:
    if args[:1] == ("init",):  # these tests are about the files written, not about reaching the Sparks
        args = (*args, "--skip-ssh-check")
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "120"})


def test_plan_json_schema(write_inventory: InventoryWriter) -> None:
    result = sparkctl("plan", "--inventory", str(write_inventory()), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"topology", "mtu", "nodes", "links", "cables"}
    node = data["nodes"]["spark1"]
    parsed = yaml.safe_load(node["netplan"])
    assert parsed["network"]["ethernets"]["enp1s0f0np0"]["addresses"] == ["10.20.0.1/24"]
    assert node["env"]["NCCL_IB_HCA"] == "rocep1s0f0,roceP2p1s0f0"
    link = data["links"][0]
    assert link["subnet"] == "10.20.0.0/24"
    assert (link["a"]["node"], link["a"]["interface"], link["a"]["address"]) == ("spark1", "enp1s0f0np0",
                                                                               "10.20.0.1/24")
    assert (link["b"]["node"], link["b"]["address"]) == ("spark2", "10.20.0.2/24")


def test_plan_human_view_draws_cables_and_addresses(write_inventory: InventoryWriter) -> None:
    result = sparkctl("plan", "--inventory", str(write_inventory(3, sparkctl_topology="ring")))
    assert result.returncode == 0, result.stderr
    assert "spark1 p0 ══════════ p1 spark2" in result.stdout
    assert "10.20.0.1/24" in result.stdout and "NCCL_ALGO=Ring" in result.stdout
    assert "management 192.168.1.101 (not touched)" in result.stdout


def test_render_writes_each_node_file_at_its_path(write_inventory: InventoryWriter, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = sparkctl("render", "--inventory", str(write_inventory()), "--out", str(out))
    assert result.returncode == 0, result.stderr
    netplan = out / "spark2" / NETPLAN_PATH.lstrip("/")
    assert stat.S_IMODE(netplan.stat().st_mode) == 0o600
    assert "10.20.1.2/24" in netplan.read_text()
    assert "NCCL_IB_HCA=rocep1s0f0,roceP2p1s0f0" in (out / "spark2/etc/sparkctl/fabric.env").read_text()


def test_init_writes_an_inventory_that_plans(tmp_path: Path) -> None:
    inv = tmp_path / "cluster"
    result = sparkctl("init", str(inv), "--node", "alpha=10.1.0.5", "--node", "beta=10.1.0.6")
    assert result.returncode == 0, result.stderr
    hosts = yaml.safe_load((inv / "hosts.yml").read_text())
    assert hosts["all"]["children"]["sparks"]["hosts"]["beta"] == {"ansible_host": "10.1.0.6"}
    assert sparkctl("plan", "-i", str(inv), "--json").returncode == 0
    again = sparkctl("init", str(inv), "--node", "alpha=10.1.0.5")
    assert again.returncode == 2 and "--force" in again.stderr


def test_init_rejects_duplicate_nodes(tmp_path: Path) -> None:
    result = sparkctl("init", str(tmp_path / "c"), "--node", "a=10.1.0.5", "--node", "a=10.1.0.6")
    assert result.returncode == 2 and "given twice" in result.stderr


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; from sparkctl.cli import cli; "
            "import contextlib, io\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()): cli(['--help'])\n"
            "print(sorted(m for m in ('rich', 'ansible', 'jinja2', 'yaml', 'ansible_runner') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
