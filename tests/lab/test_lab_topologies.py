"""The conventional cabling of each topology, checked on the nodes: carrier where the cables are."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sparkctl import hardware
from tests.labkit import loss_percent, running_lab

pytestmark = pytest.mark.lab

P0 = hardware.NETDEVS["p0"]
P1 = hardware.NETDEVS["p1"]


def test_ring_of_four(lab_root: Path) -> None:
    with running_lab(lab_root, nodes=4, topology="ring") as lab:
        all_up = {dev: "1" for dev in hardware.ALL_NETDEVS}
        for node in ("spark1", "spark2", "spark3", "spark4"):
            assert lab.wait_carriers(node, all_up) == all_up
        ping = lab.ansible("sparks", "ansible.builtin.ping")
        assert ping.returncode == 0 and ping.stdout.count("SUCCESS") == 4, ping.stdout + ping.stderr
        # spark1:p0 goes to spark2:p1; spark4:p0 closes the ring on spark1:p1.
        pairs = {("spark1", P0[0]): "198.19.31.1/24", ("spark2", P1[0]): "198.19.31.2/24",
                 ("spark4", P0[1]): "198.19.32.4/24", ("spark1", P1[1]): "198.19.32.1/24"}
        with lab.addresses(pairs):
            assert lab.ping("spark1", "198.19.31.2").returncode == 0
            assert lab.ping("spark4", "198.19.32.1").returncode == 0
        hosts = yaml.safe_load((lab.inventory / "hosts.yml").read_text())
        assert list(hosts["all"]["children"]["sparks"]["hosts"]) == ["spark1", "spark2", "spark3", "spark4"]


def test_storage_split_reaches_the_storage_target_on_both_halves(lab_root: Path) -> None:
    with running_lab(lab_root, nodes=2, topology="storage-split") as lab:
        group_vars = yaml.safe_load((lab.inventory / "group_vars" / "sparks.yml").read_text())
        storage = group_vars["sparkctl_storage"]
        assert storage == {
            "port": "p1", "networks": ["198.19.200.0/24", "198.19.201.0/24"],
            "targets": ["198.19.200.250", "198.19.201.250"],
        }
        assert "sparkctl_cabling" not in group_vars
        all_up = {dev: "1" for dev in hardware.ALL_NETDEVS}
        for index, node in enumerate(("spark1", "spark2"), start=1):
            assert lab.wait_carriers(node, all_up) == all_up
            storage_side = {(node, P1[0]): f"198.19.200.{index}/24", (node, P1[1]): f"198.19.201.{index}/24"}
            with lab.addresses(storage_side):
                assert lab.ping(node, "198.19.200.250").returncode == 0
                assert lab.ping(node, "198.19.201.250").returncode == 0
        lab.cli("uncable", "spark2:p1")
        assert lab.wait_carriers("spark2", {P1[0]: "0"})[P1[0]] == "0"
        lab.cli("cable", "spark2:p1", "storage")
        assert lab.wait_carriers("spark2", {P1[0]: "1", P1[1]: "1"})[P1[1]] == "1"


def test_switch_joins_every_p0_half_and_loss_reaches_the_other_members(lab_root: Path) -> None:
    with running_lab(lab_root, nodes=3, topology="switch") as lab:
        cabled = {P0[0]: "1", P0[1]: "1", P1[0]: "0", P1[1]: "0"}
        for node in ("spark1", "spark2", "spark3"):
            assert lab.wait_carriers(node, cabled) == cabled
        half0 = {(f"spark{i}", P0[0]): f"198.19.41.{i}/24" for i in (1, 2, 3)}
        with lab.addresses(half0):
            assert lab.ping("spark1", "198.19.41.3").returncode == 0
            assert lab.ping("spark2", "198.19.41.3").returncode == 0
            lab.cli("fault", f"spark3:{P0[0]}", "--loss", "60%")
            try:
                lossy = loss_percent(lab.ping("spark2", "198.19.41.3", count=200, interval=0.005).stdout)
                assert 50 < lossy < 98, lossy  # 60% each way: about 84% of round trips are lost
                applied = lab.status()["faults"][0]["applied"]
                assert len(applied) == 3  # spark3's own ingress plus both other switch members
            finally:
                lab.cli("fault", f"spark3:{P0[0]}", "--clear")
            assert loss_percent(lab.ping("spark2", "198.19.41.3", count=20, interval=0.01).stdout) == 0


def test_bond_cables_both_ports_and_says_bonding_is_missing(lab_root: Path) -> None:
    with running_lab(lab_root, nodes=2, topology="bond") as lab:
        all_up = {dev: "1" for dev in hardware.ALL_NETDEVS}
        for node in ("spark1", "spark2"):
            assert lab.wait_carriers(node, all_up) == all_up
        bonding = lab.sh("spark1", "ip", "link", "add", "bond0", "type", "bond", check=False)
        if bonding.returncode != 0:
            assert any("bonding" in w for w in lab.state.warnings)
        else:
            lab.sh("spark1", "ip", "link", "del", "bond0")
            assert lab.state.warnings == []
