"""Every verdict passes on healthy input and fails with its fix named, fed by the captured outputs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkctl.verify import verdicts as v
from sparkctl.verify.parse_ethtool import parse_ethtool_module
from sparkctl.verify.parse_iperf import parse_iperf3_json
from sparkctl.verify.parse_nccl import parse_nccl_tests
from sparkctl.verify.parse_pcie import parse_lspci_link, parse_pcie_sysfs
from sparkctl.verify.parse_peer import parse_peer_probe
from sparkctl.verify.parse_perftest import parse_perftest
from sparkctl.verify.parse_ping import parse_ping

Read = Callable[[str], str]

LINK = "spark1:enp1s0f0np0-spark2:enp1s0f0np0"
A = v.End("spark1", "enp1s0f0np0", "p0")
B = v.End("spark2", "enp1s0f0np0", "p0")


def test_check_names_are_the_documented_ones() -> None:
    assert v.CHECKS == ("carrier", "speed", "peer", "mtu", "bandwidth", "loss", "rdma", "nccl", "pcie", "module")


def test_end_names() -> None:
    assert str(B) == "spark2 enp1s0f0np0"
    assert B.cage == "spark2:p0"


# carrier


def test_carrier_ok() -> None:
    check = v.judge_carrier(LINK, A, B, admin_up=True, carrier=True)
    assert check.ok is True
    assert (check.link, check.check, check.value) == (LINK, "carrier", "up, carrier")


def test_carrier_missing_names_the_cable() -> None:
    check = v.judge_carrier(LINK, A, B, admin_up=True, carrier=False)
    assert check.ok is False
    assert check.value == "no carrier"
    assert "reseat or replace the cable between spark1:p0 and spark2:p0" in check.message
    assert "spark2 is powered on" in check.message


def test_carrier_admin_down_says_provision() -> None:
    check = v.judge_carrier(LINK, A, B, admin_up=False, carrier=None)
    assert check.ok is False
    assert check.message.startswith("spark1 enp1s0f0np0 is administratively down: run sparkctl provision")


def test_carrier_unknown_is_skipped() -> None:
    check = v.judge_carrier(LINK, A, B, admin_up=None, carrier=None)
    assert check.ok is None
    assert check.message == "skipped: not available"


# speed


def test_speed_ok_at_200g() -> None:
    check = v.judge_speed(LINK, A, B, 200000, 200000)
    assert check.ok is True
    assert check.value == "200000 Mb/s"


def test_speed_low_says_reseat_or_replace() -> None:
    check = v.judge_speed(LINK, A, B, 100000, 200000)
    assert check.ok is False
    assert check.expected == "200000 Mb/s"
    assert "negotiated 100000 Mb/s: reseat the cable between spark1:p0 and spark2:p0" in check.message
    assert "200G QSFP56/QSFP112 cable" in check.message


def test_speed_unknown_fails() -> None:
    check = v.judge_speed(LINK, A, B, None, 200000)
    assert check.ok is False
    assert check.value == "unknown"


# mtu


def test_mtu_ok() -> None:
    assert v.judge_mtu(LINK, B, 9000, 9000).ok is True


def test_mtu_wrong_says_set_mtu_and_provision() -> None:
    check = v.judge_mtu(LINK, B, 1500, 9000)
    assert check.ok is False
    assert (check.value, check.expected) == ("1500", "9000")
    assert check.message == "set MTU 9000 on spark2 enp1s0f0np0: run sparkctl provision"


def test_mtu_path_ok(captured: Read) -> None:
    check = v.judge_mtu_path(LINK, A, B, parse_ping(captured("ping-jumbo-ok.txt")), 9000)
    assert check.ok is True
    assert check.value == "3/3 passed"


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("ping-jumbo-local-mtu1500.txt", " (MTU 1500 on the way)"),
        ("ping-jumbo-frag-needed.txt", " (MTU 1500 on the way)"),
        ("ping-jumbo-peer-mtu1500.txt", ""),
    ],
)
def test_mtu_path_mismatch(captured: Read, name: str, where: str) -> None:
    check = v.judge_mtu_path(LINK, A, B, parse_ping(captured(name)), 9000)
    assert check.ok is False
    assert check.message == (
        f"9000-byte packets from spark1 enp1s0f0np0 do not reach spark2 enp1s0f0np0{where}: "
        "set MTU 9000 on both ends: run sparkctl provision"
    )


def test_mtu_path_total_loss_without_mtu_error(captured: Read) -> None:
    check = v.judge_mtu_path(LINK, A, B, parse_ping(captured("ping-unreachable.txt")), 9000)
    assert check.ok is False
    assert check.value == "100% lost"


# bandwidth


def test_bandwidth_ok(captured: Read) -> None:
    check = v.judge_bandwidth(LINK, A, B, parse_iperf3_json(captured("iperf3-tcp-P4.json")), 10.0)
    assert check.ok is True
    assert check.value == "13.8 Gb/s"


def test_bandwidth_low_names_rate_limit_and_cable(captured: Read) -> None:
    check = v.judge_bandwidth(LINK, A, B, parse_iperf3_json(captured("iperf3-tcp-reverse-P2.json")), 90.0)
    assert check.ok is False
    assert check.value == "20.4 Gb/s"
    assert check.expected == ">= 90 Gb/s"
    assert "check for a rate limit (`tc qdisc show dev enp1s0f0np0`) or a degraded cable" in check.message
    assert "reseat the cable between spark1:p0 and spark2:p0" in check.message
    assert "reboot" not in check.message


def test_bandwidth_near_13_gbps_hints_at_hotplug(captured: Read) -> None:
    check = v.judge_bandwidth(LINK, A, B, parse_iperf3_json(captured("iperf3-tcp-P4.json")), 90.0)
    assert check.ok is False
    assert "reboot with the cable attached" in check.message


def test_bandwidth_error(captured: Read) -> None:
    check = v.judge_bandwidth(LINK, A, B, parse_iperf3_json(captured("iperf3-refused.json")), 90.0)
    assert check.ok is False
    assert "Connection refused" in check.message
    assert "TCP port 5201" in check.message


def test_bandwidth_without_measurement_is_skipped() -> None:
    assert v.judge_bandwidth(LINK, A, B, None, 90.0).ok is None


def test_cable_bandwidth_both_halves() -> None:
    check = v.judge_cable_bandwidth("spark1:p0-spark2:p0", A, B, (92.57, 97.28), 180.0)
    assert check.ok is True
    assert check.value == "92.6 + 97.3 = 189.8 Gb/s"


def test_cable_bandwidth_idle_half_says_address_both() -> None:
    check = v.judge_cable_bandwidth("spark1:p0-spark2:p0", A, B, (96.0, None), 180.0)
    assert check.ok is False
    assert check.value == "96.0 + - = 96.0 Gb/s"
    assert "half 1 of the cable between spark1:p0 and spark2:p0 carried no traffic" in check.message
    assert "run sparkctl provision" in check.message


def test_cable_bandwidth_low_total() -> None:
    check = v.judge_cable_bandwidth("spark1:p0-spark2:p0", A, B, (13.33, 13.23), 180.0)
    assert check.ok is False
    assert "26.6 Gb/s is below 180 Gb/s" in check.message


def test_cable_bandwidth_nothing_measured_is_skipped() -> None:
    assert v.judge_cable_bandwidth("c", A, B, (None, None), 180.0).ok is None


# loss


def test_ping_loss_ok(captured: Read) -> None:
    assert v.judge_ping_loss(LINK, A, B, parse_ping(captured("ping-ok.txt"))).ok is True


def test_ping_partial_loss(captured: Read) -> None:
    check = v.judge_ping_loss(LINK, A, B, parse_ping(captured("ping-partial-loss-quiet.txt")))
    assert check.ok is False
    assert check.value == "35% lost"
    assert "`ethtool -S enp1s0f0np0`" in check.message
    assert "reseat or replace the cable between spark1:p0 and spark2:p0" in check.message


def test_ping_unreachable_says_same_subnet(captured: Read) -> None:
    check = v.judge_ping_loss(LINK, A, B, parse_ping(captured("ping-host-unreachable.txt")))
    assert check.ok is False
    assert check.value == "unreachable"
    assert "same subnet (run sparkctl provision)" in check.message


def test_ping_no_route(captured: Read) -> None:
    check = v.judge_ping_loss(LINK, A, B, parse_ping(captured("ping-network-unreachable.txt")))
    assert check.ok is False
    assert "give enp1s0f0np0 its planned address: run sparkctl provision" in check.message


def test_retransmits_ok(captured: Read) -> None:
    check = v.judge_retransmits(LINK, A, B, parse_iperf3_json(captured("iperf3-tcp-reverse-P2.json")), 9000)
    # 28 retransmits over 5093064704 bytes / 8948-byte segments is 0.005%.
    assert check.ok is True
    assert check.value == "28 retransmits (0.005%)"


def test_retransmits_too_many(captured: Read) -> None:
    check = v.judge_retransmits(LINK, A, B, parse_iperf3_json(captured("iperf3-tcp-reverse-P2.json")), 9000,
                                max_rate=1e-5)
    assert check.ok is False
    assert "retransmitted 0.005% of segments" in check.message


def test_retransmits_udp_is_skipped(captured: Read) -> None:
    assert v.judge_retransmits(LINK, A, B, parse_iperf3_json(captured("iperf3-udp.json")), 9000).ok is None


# pcie


def test_pcie_gen5_x4_ok() -> None:
    link = parse_pcie_sysfs("32.0 GT/s PCIe", "4", "32.0 GT/s PCIe", "4")
    check = v.judge_pcie(LINK, A, "0000:01:00.0", link)
    assert check.ok is True
    assert check.value == "32GT/s x4"


def test_pcie_spark_lnksta_ok(captured: Read) -> None:
    check = v.judge_pcie(LINK, A, "0000:01:00.0", parse_lspci_link(captured("lspci-vv-spark-cx7-lnksta.txt")))
    assert check.ok is True


def test_pcie_x2_says_update_bios() -> None:
    link = parse_pcie_sysfs("32.0 GT/s PCIe", "2", "32.0 GT/s PCIe", "4")
    check = v.judge_pcie(LINK, v.End("spark1", "enP2p1s0f0np0", "p0"), "0002:01:00.0", link)
    assert check.ok is False
    assert check.value == "32GT/s x2"
    assert "BIOS released before 2026-04" in check.message
    assert "update the BIOS of spark1 and reboot" in check.message


def test_pcie_x2_from_lspci_capture(captured: Read) -> None:
    link = parse_lspci_link(captured("lspci-vv-nvme-width-x2-downgraded.txt"))
    check = v.judge_pcie(LINK, A, "0001:01:00.0", link, expected_width=4, expected_speed_gts=8.0)
    assert check.ok is False
    assert "update the BIOS" in check.message


def test_pcie_slow_gen_says_reboot() -> None:
    link = parse_pcie_sysfs("16.0 GT/s PCIe", "4", "32.0 GT/s PCIe", "4")
    check = v.judge_pcie(LINK, A, "0000:01:00.0", link)
    assert check.ok is False
    assert check.message == (
        "PCIe 0000:01:00.0 (spark1 enp1s0f0np0) trained at 16GT/s: reboot spark1; if it stays, update its BIOS"
    )


def test_pcie_x1_is_not_blamed_on_the_bios_bug() -> None:
    link = parse_pcie_sysfs("32.0 GT/s PCIe", "1", "32.0 GT/s PCIe", "4")
    check = v.judge_pcie(LINK, A, "0000:01:00.0", link)
    assert check.ok is False
    assert "2026-04" not in check.message


# module


def test_module_spark_cable_passes_despite_40g_compliance(captured: Read) -> None:
    module = parse_ethtool_module(captured("ethtool-m-spark-amphenol-qsfp28-pam4.txt"))
    check = v.judge_module(LINK, A, module)
    assert check.ok is True
    assert check.value == "QSFP28 (Amphenol NJAAKK-N911)"


def test_module_qsfp_dd_does_not_fit(captured: Read) -> None:
    check = v.judge_module(LINK, A, parse_ethtool_module(captured("ethtool-m-qsfp-dd-cmis.txt")))
    assert check.ok is False
    assert check.value == "QSFP-DD"
    assert "a QSFP-DD plug does not fit a QSFP56 cage: use a QSFP56 or QSFP112 200G DAC" in check.message
    assert check.message.startswith("spark1:p0 holds QSFP-DD")


def test_module_sfp_behind_adapter() -> None:
    module = parse_ethtool_module("\tIdentifier                                : 0x03 (SFP)\n")
    check = v.judge_module(LINK, A, module)
    assert check.ok is False
    assert "QSA adapter" in check.message


def test_module_unknown_identifier() -> None:
    check = v.judge_module(LINK, A, parse_ethtool_module("Identifier : 0x7f\n"))
    assert check.ok is False
    assert "identifier 0x7f is not a QSFP-family plug" in check.message


def test_module_without_eeprom_is_skipped(captured: Read) -> None:
    check = v.judge_module(LINK, A, parse_ethtool_module(captured("ethtool-m-veth-unsupported.txt")))
    assert check.ok is None
    assert check.message == "skipped: not available"


# rdma


def test_rdma_healthy_half(captured: Read) -> None:
    check = v.judge_rdma(LINK, "rocep1s0f1", parse_perftest(captured("ib-write-bw-spark-report-gbits-q4.txt")))
    assert check.ok is True
    assert (check.value, check.expected) == ("111.7 Gb/s", ">= 90 Gb/s")


def test_rdma_hotplugged_cable(captured: Read) -> None:
    check = v.judge_rdma(LINK, "rocep1s0f0", parse_perftest(captured("ib-write-bw-spark-hotplug-13gbps.txt")))
    assert check.ok is False
    assert check.value == "13.2 Gb/s"
    assert "reboot with the cable attached" in check.message


def test_rdma_connect_failure_points_at_gid_index(captured: Read) -> None:
    check = v.judge_rdma(LINK, "rocep1s0f0", parse_perftest(captured("ib-write-bw-connect-failure.txt")))
    assert check.ok is False
    assert "Unable to Connect the HCA's through the link" in check.message
    assert "/sys/class/infiniband/rocep1s0f0/ports/1/gid_attrs/types" in check.message


def test_rdma_unavailable_is_skipped() -> None:
    assert v.judge_rdma(LINK, "rocep1s0f0", None).ok is None


# nccl


def test_nccl_thresholds() -> None:
    assert v.nccl_minimum(2, ring=False) == 21.875
    assert v.nccl_minimum(3, ring=True) == 10.0
    assert v.nccl_minimum(4, ring=True) is None


def test_nccl_spark_pair_at_mtu_1500_fails(captured: Read) -> None:
    result = parse_nccl_tests(captured("nccl-all-gather-perf-spark-16g-mtu1500.txt"))
    check = v.judge_nccl("cluster", result, v.nccl_minimum(2, ring=False))
    assert check.ok is False
    assert (check.value, check.expected) == ("18.94 GB/s", ">= 21.875 GB/s")
    assert "set MTU 9000 on every fabric interface" in check.message
    assert "NCCL_IB_HCA" in check.message


def test_nccl_same_run_passes_a_three_ring_threshold(captured: Read) -> None:
    result = parse_nccl_tests(captured("nccl-all-gather-perf-spark-16g-mtu1500.txt"))
    assert v.judge_nccl("cluster", result, v.nccl_minimum(3, ring=True)).ok is True


def test_nccl_failure(captured: Read) -> None:
    check = v.judge_nccl("cluster", parse_nccl_tests(captured("nccl-tests-failure-rccl.txt")), 21.875)
    assert check.ok is False
    assert "unhandled cuda error" in check.message


def test_nccl_wrong_results(captured: Read) -> None:
    text = captured("nccl-all-gather-perf-spark-16g-mtu1500.txt").replace("18.94       0", "18.94       3")
    check = v.judge_nccl("cluster", parse_nccl_tests(text), 10.0)
    assert check.ok is False
    assert "corrupted results" in check.message


def test_nccl_without_threshold_is_skipped(captured: Read) -> None:
    result = parse_nccl_tests(captured("nccl-all-gather-perf-2node-a3.txt"))
    check = v.judge_nccl("cluster", result, None)
    assert check.ok is None
    assert check.expected == "no published threshold"


# peer


def test_peer_as_planned(captured: Read) -> None:
    report = parse_peer_probe(captured("peer-probe-direct-spark1.json"))
    check = v.judge_peer(LINK, A, "spark2:enp1s0f1np1", report)
    assert check.ok is True
    assert check.value == "spark2:enp1s0f1np1"


def test_peer_swapped_cable(captured: Read) -> None:
    report = parse_peer_probe(captured("peer-probe-direct-spark1.json"))
    check = v.judge_peer(LINK, A, "spark2:enp1s0f0np0", report)
    assert check.ok is False
    assert check.message == (
        "spark1 enp1s0f0np0 is cabled to spark2:enp1s0f1np1, the plan expects spark2:enp1s0f0np0: "
        "move the cable to the planned cage or change the cabling in the inventory"
    )


def test_peer_twin_does_not_count_as_a_second_peer(captured: Read) -> None:
    report = parse_peer_probe(captured("peer-probe-switch-spark1-half0.json"))
    assert v.judge_peer(LINK, A, "spark2:enp1s0f0np0", report, direct=True).ok is True


def test_peer_several_nodes_on_a_direct_link(captured: Read) -> None:
    text = captured("peer-probe-direct-spark1.json").replace(
        '"heard": [', '"heard": [{"frames": 2, "iface": "enp1s0f0np0", "mac": "aa:bb:cc:dd:ee:ff", '
        '"node": "spark3", "src_mac": "aa:bb:cc:dd:ee:ff"}, '
    )
    check = v.judge_peer(LINK, A, "spark2:enp1s0f1np1", parse_peer_probe(text))
    assert check.ok is False
    assert "hears 2 nodes, so it is not a direct cable" in check.message
    assert v.judge_peer(LINK, A, "spark2:enp1s0f1np1", parse_peer_probe(text), direct=False).ok is True


def test_peer_nobody(captured: Read) -> None:
    check = v.judge_peer(LINK, A, "spark2:enp1s0f0np0", parse_peer_probe(captured("peer-probe-nobody.json")))
    assert check.ok is False
    assert check.value == "nobody"
    assert "check that the probe ran on spark2" in check.message


def test_peer_probe_error(captured: Read) -> None:
    report = parse_peer_probe(captured("peer-probe-iface-down.json"))
    check = v.judge_peer(LINK, A, "spark2:enp1s0f0np0", report)
    assert check.ok is False
    assert "--bring-up" in check.message


def test_peer_skipped() -> None:
    assert v.judge_peer(LINK, A, "spark2:enp1s0f0np0", None).message == "skipped: not available"


def test_loss_within_what_the_inventory_allows_passes(captured: Read) -> None:
    lossy = parse_ping(captured("ping-partial-loss-quiet.txt"))
    assert v.judge_ping_loss(LINK, A, B, lossy).ok is False
    allowed = v.judge_ping_loss(LINK, A, B, lossy, max_loss_percent=lossy.loss_percent)
    assert allowed.ok is True and allowed.message == "within sparkctl_max_loss_percent"
