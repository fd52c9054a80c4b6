"""doctor's verdicts on facts read off two provisioned lab nodes (captured/), and on fixtures of what the lab
cannot have (RDMA GID tables, ConnectX-7 firmware, a PCIe link, NIC error counters, a 200G link speed):
one finding per difference, nothing on a clean cluster."""

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
from sparkctl.verify.expectations import read_expectations

CAPTURED = Path(__file__).parent / "captured"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def facts() -> dict[str, dict[str, Any]]:
    return {node: json.loads((CAPTURED / f"lab-direct-{node}.json").read_text()) for node in ("spark1", "spark2")}


def _inventory(root: Path, **extra: Any) -> Any:
    """The inventory of the lab the facts were read from (2 nodes, direct, pool 198.19.0.0/16, veth speed)."""
    (root / "group_vars").mkdir()
    (root / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"sparks": {"hosts": {
        "spark1": {"ansible_host": "198.18.3.11"}, "spark2": {"ansible_host": "198.18.3.12"}}}}}}))
    (root / "group_vars" / "sparks.yml").write_text(yaml.safe_dump({
        "sparkctl_topology": "direct", "sparkctl_mtu": 9000, "sparkctl_fabric_pool": "198.19.0.0/16",
        "sparkctl_link_speed_mbps": 10000, **extra}))
    return load_inventory(root)


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return read_settings(_inventory(tmp_path))


def _findings(settings: Any, facts: dict[str, dict[str, Any]],
              speed: int = 10000) -> list[tuple[str, str, str, str]]:
    plan = doctor.plan_as_provisioned(settings, facts)
    return [(f.node, f.check, f.found, f.expected) for f in doctor.examine(settings, plan, facts, speed)]


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
    half1 = {"roceP2p1s0f0": [{**entry, "netdev": "enP2p1s0f0np0", "index": "3"}]}
    facts["spark1"]["gids"] = {"rocep1s0f0": [{**entry, "index": "3"}], **half1}
    facts["spark2"]["gids"] = copy.deepcopy({"rocep1s0f0": [{**entry, "index": "4"}], **half1})
    found = _findings(settings, facts)
    assert len(found) == 1 and found[0][1] == "rocep1s0f0 RoCE v2 GID index"


def test_the_expected_speed_is_the_inventory_s(tmp_path: Path, facts: dict[str, dict[str, Any]]) -> None:
    """A lab's veth reports 10000 Mb/s and its inventory says so; judged as a Spark (200000), every
    planned link with carrier is named, and no unplanned one."""
    inventory = _inventory(tmp_path)
    assert read_expectations(inventory).link_speed_mbps == 10000
    found = _findings(read_settings(inventory), facts, speed=200000)
    assert sorted(found) == sorted((node, f"{dev} speed", "10000 Mb/s", "200000 Mb/s")
                                   for node in ("spark1", "spark2") for dev in ("enp1s0f0np0", "enP2p1s0f0np0"))


def _sysfs_with_pcie(root: Path, device: str, function: str) -> Path:
    """A /sys/class/net whose `device` links to a copy of a fixture PCI function directory."""
    target = root / "bus" / "pci" / "devices" / function.split("/")[-1]
    target.mkdir(parents=True)
    for item in (FIXTURES / function).iterdir():
        (target / item.name).write_text(item.read_text())
    (root / "class" / "net" / device).mkdir(parents=True)
    (root / "class" / "net" / device / "device").symlink_to(target)
    return root / "class" / "net"


def test_second_pcie_half_at_x2_is_named(tmp_path: Path, settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    """Fixture (the lab has no PCI device behind a veth): the sysfs link files of a ConnectX-7 function whose
    link trained at Gen5 x2 instead of x4, as the kernel formats them."""
    sys_net = _sysfs_with_pcie(tmp_path, "enP2p1s0f0np0", "pcie-gen5-x2-of-x4/0002:01:00.0")
    read = doctor.doctor_facts.pcie_link("enP2p1s0f0np0", sys_net)
    assert read == {"address": "0002:01:00.0", "current_link_speed": "32.0 GT/s PCIe", "current_link_width": "2",
                    "max_link_speed": "32.0 GT/s PCIe", "max_link_width": "4"}
    assert doctor.doctor_facts.pcie_link("enp1s0f0np0", sys_net) is None  # no such netdev: nothing invented
    facts["spark2"]["pcie"]["enP2p1s0f0np0"] = read
    assert _findings(settings, facts) == [
        ("spark2", "enP2p1s0f0np0 PCIe link", "x2 at 32 GT/s (0002:01:00.0)", "x4 at 32 GT/s (the device's maximum)")]


def test_a_full_pcie_link_is_clean_and_a_veth_is_not_checked(
        tmp_path: Path, settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    """Fixture: a Gen5 x4 function is healthy; the lab's veths (captured) are listed as not checked."""
    sys_net = _sysfs_with_pcie(tmp_path, "enp1s0f0np0", "pcie-gen5-x4/0000:01:00.0")
    facts["spark1"]["pcie"]["enp1s0f0np0"] = doctor.doctor_facts.pcie_link("enp1s0f0np0", sys_net)
    assert _findings(settings, facts) == []
    plan = doctor.plan_as_provisioned(settings, facts)
    unread = {(n.node, n.device, n.check) for n in doctor.not_checked(plan, facts)}
    assert ("spark1", "enp1s0f0np0", "PCIe link") not in unread
    assert {("spark1", "enP2p1s0f0np0", "PCIe link"), ("spark2", "enp1s0f0np0", "PCIe link"),
            ("spark2", "enP2p1s0f0np0", "PCIe link"), ("spark1", "", "RoCE GID index")} <= unread
    assert not any(device == "enp1s0f1np1" for _, device, _ in unread)  # not planned on a direct cable


def test_error_counters_that_grew_since_the_last_look(settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    facts["spark1"]["counters"]["enp1s0f0np0"]["tx_dropped"] += 12
    facts["spark1"]["counters"]["enp1s0f1np1"]["tx_dropped"] += 5  # an unplanned port: not judged
    found = _findings(settings, facts)
    assert [(node, check, expected) for node, check, _, expected in found] == [
        ("spark1", "enp1s0f0np0 error counters", "no growth")]
    assert found[0][2].startswith("tx_dropped +12 since ")


def test_a_first_look_has_no_growth_and_says_so(settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    facts["spark1"]["counters_before"] = None
    facts["spark1"]["counters"]["enp1s0f0np0"]["rx_errors"] += 3
    assert _findings(settings, facts) == []
    plan = doctor.plan_as_provisioned(settings, facts)
    assert ("spark1", "error counter growth") in {(n.node, n.check) for n in doctor.not_checked(plan, facts)}
    assert ("spark2", "error counter growth") not in {(n.node, n.check) for n in doctor.not_checked(plan, facts)}


def test_mlx5_counters_grown_and_reset() -> None:
    """Real mlx5_core `ethtool -S` output (captured/ethtool-S-mlx5-connectx4.txt: a ConnectX-4 on Ubuntu 18.04,
    published in isc-projects/ethq's test data, with ethtool's header and indentation as ethtool prints them;
    a ConnectX-7 runs the same driver and counter names) and real veth output (ethtool 6.1, kernel 6.18): the
    error counters are picked by name, per-queue and XDP counters left out, and a reset counts from zero."""
    facts_module = doctor.doctor_facts
    stats = facts_module.parse_ethtool_stats((CAPTURED / "ethtool-S-mlx5-connectx4.txt").read_text())
    assert stats["rx_packets_phy"] == 845715962 and len(stats) == 751
    errors = {name for name in stats if facts_module.is_error_counter(name)}
    assert {"rx_crc_errors_phy", "rx_symbol_err_phy", "rx_pcs_symbol_err_phy", "rx_discards_phy",
            "rx_out_of_buffer", "tx_errors_phy", "link_down_events_phy"} <= errors
    assert not any(n.startswith(("rx0_", "tx0_", "ch0_")) or "xdp" in n for n in errors)
    assert "rx_corrected_bits_phy" not in errors and "rx_packets_phy" not in errors
    before = {name: stats[name] for name in errors}
    now = {**before, "rx_crc_errors_phy": before["rx_crc_errors_phy"] + 40, "rx_out_of_buffer": 7}
    assert facts_module.counter_growth(before, now) == {"rx_crc_errors_phy": 40, "rx_out_of_buffer": 7}
    veth = facts_module.parse_ethtool_stats((CAPTURED / "ethtool-S-veth.txt").read_text())
    assert veth["peer_ifindex"] == 2 and not any(facts_module.is_error_counter(n) for n in veth)


DOCKER_FORWARD = """-P FORWARD DROP
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
"""


def test_docker_user_rules_let_the_fabric_through_a_drop_policy() -> None:
    fabric = ["enp1s0f0np0", "enp1s0f1np1"]
    user = "-N DOCKER-USER\n-A DOCKER-USER -i enp1s0f0np0 -j ACCEPT\n-A DOCKER-USER -j RETURN\n"
    assert doctor.accepted_inputs(DOCKER_FORWARD, user, fabric) == {"enp1s0f0np0"}
    user += "-A DOCKER-USER -i enp1s0f1np1 -o enp1s0f0np0 -j ACCEPT\n"
    assert doctor.accepted_inputs(DOCKER_FORWARD, user, fabric) == set(fabric)
    no_jump = DOCKER_FORWARD.replace("-A FORWARD -j DOCKER-USER\n", "")
    assert doctor.accepted_inputs(no_jump, user, fabric) == set()
    matched = "-A DOCKER-USER -i enp1s0f0np0 -p tcp -j ACCEPT\n-A DOCKER-USER -i enp1s0f1np1 -o docker0 -j ACCEPT\n"
    assert doctor.accepted_inputs(DOCKER_FORWARD, matched, fabric) == set()


def test_a_service_image_that_differs_between_nodes(settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    """Fixture (the lab's stand-in docker derives an image's ID from its name, so two nodes never differ): one
    tag re-pulled later on spark2 brought another build; NCCL differing the same way."""
    image = "nvcr.io/nvidia/vllm:25.09-py3"
    facts["spark1"]["images"] = {image: "sha256:" + "a" * 64}
    facts["spark2"]["images"] = {image: "sha256:" + "b" * 64}
    facts["spark2"]["nccl"] = "2.28.3-1+cuda13.0"
    found = _findings(settings, facts)
    assert [(node, check) for node, check, _, _ in found] == [("spark2", "NCCL (libnccl2) parity"),
                                                              ("spark2", f"image {image} parity")]


def test_an_nccl_device_without_a_roce_v2_ipv4_gid(settings: Any, facts: dict[str, dict[str, Any]]) -> None:
    """Fixture (no RDMA in the lab): the environment names rocep1s0f0 and roceP2p1s0f0 for NCCL; on spark1 the
    second has no RoCE v2 IPv4 entry (its netdev without an IPv4 address, say)."""
    entry = {"gid": "0000:0000:0000:0000:0000:ffff:c613:0001", "netdev": "enp1s0f0np0", "index": "3"}
    facts["spark1"]["gids"] = {"rocep1s0f0": [entry], "roceP2p1s0f0": []}
    assert _findings(settings, facts) == [("spark1", "roceP2p1s0f0 RoCE v2 GID", "none",
                                           "a RoCE v2 IPv4 GID (NCCL_IB_HCA names the device)")]
    del facts["spark1"]["gids"]["roceP2p1s0f0"]
    assert _findings(settings, facts)[0][2] == "no such RDMA device"


def test_a_unit_whose_program_left_the_node(settings: Any, facts: dict[str, dict[str, Any]],
                                            tmp_path: Path) -> None:
    """After a release upgrade removed the Python a unit names, the unit fails when it next starts."""
    from sparkctl.node import doctor_facts

    restore, watch_unit = tmp_path / "restore.service", tmp_path / "watch.service"
    restore.write_text("[Service]\nExecStart=/usr/bin/python3.99 -m sparkctl_node.rollback\n")
    watch_unit.write_text("[Service]\nExecStart=-/bin/sh -c true\n")
    seen = doctor_facts.unit_programs([str(restore), str(watch_unit), str(tmp_path / "absent.service")])
    assert seen == {str(restore): {"program": "/usr/bin/python3.99", "present": False},
                    str(watch_unit): {"program": "/bin/sh", "present": True}}
    facts["spark2"]["unit_programs"] = {"/etc/systemd/system/sparkctl-fabric-restore.service": seen[str(restore)]}
    assert _findings(settings, facts) == [("spark2", "sparkctl-fabric-restore.service program",
                                           "/usr/bin/python3.99 (not on the node)",
                                           "a program the node has (provisioning names the system's python3)")]
