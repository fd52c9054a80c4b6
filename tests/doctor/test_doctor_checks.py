"""doctor's verdicts on facts read off two provisioned lab nodes (captured/), and on fixtures of what the lab
cannot have (RDMA GID tables, ConnectX-7 firmware): one finding per difference, nothing on a clean cluster."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkctl import doctor
from sparkctl.inventory import load_inventory
from sparkctl.settings import read_settings

CAPTURED = Path(__file__).parent / "captured"


@pytest.fixture
def facts() -> dict[str, dict[str, Any]]:
    return {node: json.loads((CAPTURED / f"lab-direct-{node}.json").read_text()) for node in ("spark1", "spark2")}


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    """The settings of the lab the facts were read from (2 nodes, direct, pool 198.19.0.0/16)."""
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"sparks": {"hosts": {
        "spark1": {"ansible_host": "198.18.3.11"}, "spark2": {"ansible_host": "198.18.3.12"}}}}}}))
    (tmp_path / "group_vars" / "sparks.yml").write_text(yaml.safe_dump({
        "sparkctl_topology": "direct", "sparkctl_mtu": 9000, "sparkctl_fabric_pool": "198.19.0.0/16"}))
    return read_settings(load_inventory(tmp_path))


def _findings(settings: Any, facts: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    plan = doctor.plan_as_provisioned(settings, facts)
    return [(f.node, f.check, f.found, f.expected) for f in doctor.examine(settings, plan, facts)]


def test_a_clean_cluster_has_no_findings(settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    assert _findings(settings, facts) == []


def test_mtu_reset_on_one_half(settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    link = next(x for x in facts["spark2"]["addresses"] if x["ifname"] == "enP2p1s0f0np0")
    link["mtu"] = 1500
    assert _findings(settings, facts) == [("spark2", "enP2p1s0f0np0 MTU", "1500", "9000")]


def test_a_file_provisioning_wrote_that_changed(settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    facts["spark1"]["files"]["/etc/sparkctl/fabric.env"] += "NCCL_IB_HCA=mlx5_0\n"
    assert _findings(settings, facts) == [("spark1", "/etc/sparkctl/fabric.env", "different content", "as planned")]


def test_kernel_differing_between_nodes(settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    facts["spark2"]["kernel"] = "6.11.0-1016-nvidia"
    assert _findings(settings, facts) == [
        ("spark2", "kernel parity", "6.11.0-1016-nvidia", f"{facts['spark1']['kernel']} (as on the other Sparks)")]


def test_firmware_differing_between_nodes(settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    """Fixture: the lab's veth has no firmware; a ConnectX-7 reports e.g. 28.45.1020 (ethtool -i)."""
    for node, version in (("spark1", "28.45.1020"), ("spark2", "28.43.2026")):
        for netdev in ("enp1s0f0np0", "enP2p1s0f0np0"):
            facts[node]["drivers"][netdev] = {"driver": "mlx5_core", "version": "24.10-1.1.4",
                                              "firmware-version": f"{version} (NVD0000000087)"}
    found = _findings(settings, facts)
    assert ("spark2", "firmware parity", "28.43.2026 (NVD0000000087)",
            "28.45.1020 (NVD0000000087) (as on the other Sparks)") in found
    assert [f for f in found if f[1] != "firmware parity"] == []


def test_gid_index_moved_on_one_node(settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    """Fixture: the lab has no RDMA devices; on a Spark the RoCE v2 IPv4 entry moved from 3 to 4."""
    entry = {"gid": "0000:0000:0000:0000:0000:ffff:c613:0001", "netdev": "enp1s0f0np0"}
    facts["spark1"]["gids"] = {"rocep1s0f0": [{**entry, "index": "3"}]}
    facts["spark2"]["gids"] = copy.deepcopy({"rocep1s0f0": [{**entry, "index": "4"}]})
    found = _findings(settings, facts)
    assert len(found) == 1 and found[0][1] == "rocep1s0f0 RoCE v2 GID index"
