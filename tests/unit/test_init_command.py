"""`sparkctl init` never overwrites without --force, writes nothing when the result would not plan, and a
pool that cannot hold the cluster gets a fix that works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sparkctl.cluster import load_cluster
from sparkctl.errors import InputError
from tests.unit.conftest import InventoryWriter

NODES = ["--node", "alpha=192.168.1.5", "--node", "beta=192.168.1.6"]


def sparkctl(*args: str) -> subprocess.CompletedProcess[str]:
    if args[:1] == ("init",):  # these tests are about the files written, not about reaching the Sparks
        args = (*args, "--skip-ssh-check")
    return subprocess.run([sys.executable, "-m", "sparkctl", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def files(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_an_existing_group_vars_file_is_not_overwritten_without_force(tmp_path: Path) -> None:
    group_vars = tmp_path / "inv" / "group_vars" / "sparks.yml"
    group_vars.parent.mkdir(parents=True)
    group_vars.write_text("sparkctl_mtu: 1500  # mine\n")
    result = sparkctl("init", str(tmp_path / "inv"), *NODES)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{group_vars}: already exists" in result.stderr and "--force" in result.stderr
    assert files(tmp_path / "inv") == {"group_vars/sparks.yml": "sparkctl_mtu: 1500  # mine\n"}
    assert sparkctl("init", str(tmp_path / "inv"), *NODES, "--force").returncode == 0
    assert "sparkctl_mtu: 9000" in group_vars.read_text()


def test_an_inventory_that_would_not_plan_leaves_nothing_behind(tmp_path: Path) -> None:
    inv = tmp_path / "new" / "inv"
    result = sparkctl("init", str(inv), *NODES, "--fabric-pool", "192.168.1.0/24")  # the management network
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nothing was written" in result.stderr and "sparkctl_fabric_pool" in result.stderr
    assert "--fabric-pool" in result.stderr
    assert not (tmp_path / "new").exists()
    again = sparkctl("init", str(inv), *NODES)  # a corrected re-run needs no --force
    assert again.returncode == 0, again.stderr
    load_cluster(inv)


def test_a_failed_forced_init_keeps_the_previous_inventory(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    assert sparkctl("init", str(inv), *NODES).returncode == 0
    before = files(inv)
    result = sparkctl("init", str(inv), *NODES, "--fabric-pool", "127.0.0.0/16", "--force")
    assert result.returncode == 2 and "nothing was written" in result.stderr
    assert files(inv) == before


def test_direct_cables_between_more_than_two_sparks_are_left_to_discovery(tmp_path: Path) -> None:
    nodes = [arg for i in range(1, 5) for arg in ("--node", f"s{i}=192.168.1.{10 + i}")]
    result = sparkctl("init", str(tmp_path / "inv"), *nodes)
    assert result.returncode == 0, result.stderr


def test_too_many_hosts_per_subnet_asks_for_a_shorter_subnet_prefix(write_inventory: InventoryWriter) -> None:
    count = 300
    nodes = {f"s{i}": {"ansible_host": f"192.168.{i // 200}.{i % 200 + 1}"} for i in range(1, count + 1)}
    cabling = [f"s{i}:p0 s{i + 1}:p0" for i in range(1, count, 2)]
    inventory = write_inventory(nodes, sparkctl_fabric_pool="10.0.0.0/8", sparkctl_cabling=cabling,
                                sparkctl_management_network="192.168.0.0/22")
    with pytest.raises(InputError) as caught:
        load_cluster(inventory)
    text = str(caught.value)
    assert caught.value.key == "sparkctl_subnet_prefix", text
    assert "300 hosts in each, and a /24 has room for 254" in text
    assert "set sparkctl_subnet_prefix to 23 or less" in text and "at least /8" not in text
    assert "pool" not in caught.value.fix  # 10.0.0.0/8 holds 1200 subnets of /23 already


def test_too_few_subnets_asks_for_a_pool_that_holds_them(write_inventory: InventoryWriter) -> None:
    with pytest.raises(InputError) as caught:
        load_cluster(write_inventory(3, sparkctl_topology="ring", sparkctl_fabric_pool="10.20.0.0/22"))
    assert caught.value.key == "sparkctl_fabric_pool"
    assert "needs 12 subnets of /24, and it holds 4" in str(caught.value)
    assert "use a fabric pool of /20 or larger" in str(caught.value)


REPO = Path(__file__).resolve().parents[2]


def _init_as(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sparkctl", "init", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PYTHONPATH": str(REPO), **env})


def test_init_writes_the_default_inventory_for_the_user_who_runs_it_with_sudo(tmp_path: Path) -> None:
    result = _init_as(tmp_path, *NODES, "--skip-ssh-check", SUDO_USER="alice")
    assert result.returncode == 0, result.stderr
    group_vars = (tmp_path / "inventory" / "group_vars" / "sparks.yml").read_text()
    assert "ansible_user: alice" in group_vars and "ansible_become: true" in group_vars
    assert result.stdout.splitlines()[-1] == "next: sparkctl plan"
    assert "alice becomes root with sudo on the Sparks: if sudo asks for a password, give it with -K" in result.stdout
    other = tmp_path / "other"
    other.mkdir()
    as_root = _init_as(other, "root-inv", *NODES, "--skip-ssh-check", "--user", "root")
    assert as_root.returncode == 0, as_root.stderr
    assert "ansible_become" not in (other / "root-inv" / "group_vars" / "sparks.yml").read_text()


def test_init_contacts_each_spark_first_and_writes_nothing_when_one_cannot_be_trusted(tmp_path: Path) -> None:
    result = _init_as(tmp_path, "--node", "alpha=127.0.0.1", "--user", "root")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "alpha" in result.stderr
    assert "--accept-new-host-keys" in result.stderr or "--skip-ssh-check" in result.stderr
    assert not (tmp_path / "inventory").exists()
