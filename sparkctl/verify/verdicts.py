"""Judge parsed measurements against the plan, one `Check` per question, each failure naming its fix.

A verdict is only useful if it tells the user what to do next, so every failing message ends in an
action: the command to run, the part to reseat, the setting to change. `ok=None` means the data was
not available (no RDMA device in a lab, ethtool without module EEPROM) and is reported as skipped,
never as a pass. Thresholds come from NVIDIA's published figures for DGX Spark: ~90 Gb/s RDMA
write per half (its benchmarking guide measured 92.6 + 97.3 Gb/s over one cable), and an
all_gather_perf pass mark of 21.875 GB/s busbw for two nodes and 10 GB/s for a ring of three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sparkctl.verify.parse_ethtool import ModuleInfo
from sparkctl.verify.parse_iperf import IperfResult
from sparkctl.verify.parse_nccl import NcclResult
from sparkctl.verify.parse_pcie import PcieLink
from sparkctl.verify.parse_peer import PeerProbeReport
from sparkctl.verify.parse_perftest import PerftestResult
from sparkctl.verify.parse_ping import PingResult

CHECKS = ("carrier", "speed", "peer", "mtu", "bandwidth", "loss", "rdma", "nccl", "pcie", "module")
SKIPPED = "skipped: not available"

RDMA_MIN_GBPS = 90.0
"""ib_write_bw per half: NVIDIA measured 92.57 and 97.28 Gb/s on the two halves of one cable."""
NCCL_MIN_BUSBW = {2: 21.875}
"""all_gather_perf busbw (GB/s) NVIDIA's cluster test accepts, by node count (pair or switch)."""
NCCL_MIN_BUSBW_RING3 = 10.0
HOTPLUG_BAND_GBPS = (10.0, 16.0)
"""A cable hot-plugged into running Sparks has been seen to train at ~13 Gb/s per half until both
nodes reboot with the cable attached; no counter shows it, so the figure itself is the hint."""
QSFP_CAGE_FITS = frozenset({0x0C, 0x0D, 0x11, 0x1E})
"""SFF-8024 identifiers of QSFP-family plugs (QSFP, QSFP+, QSFP28/QSFP56, QSFP112 via CMIS)."""
TCP_HEADERS = 52
"""IPv4 + TCP with timestamps: what a segment loses to headers, to estimate segments from bytes."""


@dataclass(frozen=True)
class Check:
    """One verdict: which link, what was checked, what was seen against what was expected."""

    link: str
    check: str
    value: str
    expected: str
    ok: bool | None
    message: str


@dataclass(frozen=True)
class End:
    """One end of a link as messages name it: `spark2 enp1s0f0np0`, cage `spark2:p0`."""

    node: str
    interface: str
    port: str

    def __str__(self) -> str:
        return f"{self.node} {self.interface}"

    @property
    def cage(self) -> str:
        return f"{self.node}:{self.port}"


def skipped(link: str, check: str, expected: str) -> Check:
    return Check(link, check, "", expected, None, SKIPPED)


def _cable(end: End, peer: End) -> str:
    return f"the cable between {end.cage} and {peer.cage}"


def judge_carrier(link: str, end: End, peer: End, admin_up: bool | None, carrier: bool | None) -> Check:
    """The interface is up and sees a partner on the wire."""
    expected = "up, carrier"
    if admin_up is None and carrier is None:
        return skipped(link, "carrier", expected)
    if admin_up is False:
        return Check(link, "carrier", "admin down", expected, False,
                     f"{end} is administratively down: run sparkctl provision (or `ip link set {end.interface} up`)")
    if not carrier:
        return Check(link, "carrier", "no carrier", expected, False,
                     f"no carrier on {end}: make sure {peer.node} is powered on, then reseat or replace "
                     f"{_cable(end, peer)}")
    return Check(link, "carrier", "up, carrier", expected, True, "carrier present")


def judge_speed(link: str, end: End, peer: End, speed_mbps: int | None, expected_mbps: int) -> Check:
    """The negotiated speed is at least what the plan expects (200000 Mb/s per half on a Spark)."""
    expected = f"{expected_mbps} Mb/s"
    if speed_mbps is None:
        return Check(link, "speed", "unknown", expected, False,
                     f"{end} reports no speed, so the link is not up: fix the carrier first, then reseat "
                     f"{_cable(end, peer)}")
    if speed_mbps < expected_mbps:
        return Check(link, "speed", f"{speed_mbps} Mb/s", expected, False,
                     f"{end} negotiated {speed_mbps} Mb/s: reseat {_cable(end, peer)}; if it stays low, "
                     f"replace it with a 200G QSFP56/QSFP112 cable")
    return Check(link, "speed", f"{speed_mbps} Mb/s", expected, True, "speed as expected")


def judge_mtu(link: str, end: End, mtu: int | None, expected_mtu: int) -> Check:
    """The interface MTU is the planned one (firmware updates have reset it to 1500)."""
    expected = str(expected_mtu)
    if mtu is None:
        return skipped(link, "mtu", expected)
    if mtu != expected_mtu:
        return Check(link, "mtu", str(mtu), expected, False,
                     f"set MTU {expected_mtu} on {end}: run sparkctl provision")
    return Check(link, "mtu", str(mtu), expected, True, "MTU as planned")


def judge_mtu_path(link: str, end: End, peer: End, ping: PingResult | None, expected_mtu: int) -> Check:
    """A full-size packet with DF set (`ping -M do -s MTU-28`) crosses the link."""
    expected = f"{expected_mtu}-byte packets pass"
    if ping is None:
        return skipped(link, "mtu", expected)
    if ping.mtu_problem:
        where = f" (MTU {ping.reported_mtu} on the way)" if ping.reported_mtu else ""
        return Check(link, "mtu", ping.mtu_errors[0], expected, False,
                     f"{expected_mtu}-byte packets from {end} do not reach {peer}{where}: set MTU "
                     f"{expected_mtu} on both ends: run sparkctl provision")
    if ping.error or ping.received == 0:
        return Check(link, "mtu", f"{ping.loss_percent:g}% lost", expected, False,
                     f"no {expected_mtu}-byte ping from {end} reached {peer}: fix the loss check first, "
                     f"then set MTU {expected_mtu} on both ends: run sparkctl provision")
    return Check(link, "mtu", f"{ping.received}/{ping.transmitted} passed", expected, True, "full-size packets pass")


def judge_bandwidth(link: str, end: End, peer: End, result: IperfResult | None, minimum_gbps: float) -> Check:
    """One half carries at least `minimum_gbps` (iperf3, received side)."""
    expected = f">= {minimum_gbps:g} Gb/s"
    if result is None:
        return skipped(link, "bandwidth", expected)
    if result.error is not None:
        return Check(link, "bandwidth", "error", expected, False,
                     f"iperf3 from {end} to {peer} failed ({result.error}): check that {peer} answers on "
                     f"its fabric address and that nothing blocks TCP port 5201")
    if result.received_gbps is None:
        return skipped(link, "bandwidth", expected)
    return _bandwidth_verdict(link, "bandwidth", result.received_gbps, minimum_gbps, _cable(end, peer),
                              f"a rate limit (`tc qdisc show dev {end.interface}`) or a degraded cable")


def judge_cable_bandwidth(cable: str, end: End, peer: End, halves: Sequence[float | None],
                          minimum_gbps: float) -> Check:
    """Both halves together carry at least `minimum_gbps`; one idle half means half the cable."""
    expected = f">= {minimum_gbps:g} Gb/s"
    if all(half is None for half in halves):
        return skipped(cable, "bandwidth", expected)
    idle = [index for index, half in enumerate(halves) if not half]
    total = sum(half or 0.0 for half in halves)
    value = " + ".join("-" if half is None else f"{half:.1f}" for half in halves) + f" = {total:.1f} Gb/s"
    if idle:
        return Check(cable, "bandwidth", value, expected, False,
                     f"half {idle[0]} of {_cable(end, peer)} carried no traffic: one cable gives full "
                     f"bandwidth only when both halves are addressed, each on its own subnet: run "
                     f"sparkctl provision")
    return _bandwidth_verdict(cable, "bandwidth", total, minimum_gbps, _cable(end, peer),
                              "a rate limit or a degraded cable", value)


def _bandwidth_verdict(link: str, check: str, gbps: float, minimum: float, cable: str, suspects: str,
                       value: str | None = None) -> Check:
    expected = f">= {minimum:g} Gb/s"
    value = value or f"{gbps:.1f} Gb/s"
    if gbps >= minimum:
        return Check(link, check, value, expected, True, "bandwidth as expected")
    message = f"{gbps:.1f} Gb/s is below {minimum:g} Gb/s: check for {suspects} and reseat {cable}"
    if HOTPLUG_BAND_GBPS[0] <= gbps <= HOTPLUG_BAND_GBPS[1]:
        message += ("; ~13 Gb/s is what a cable plugged into running Sparks gives until both nodes "
                    "reboot with the cable attached")
    return Check(link, check, value, expected, False, message)


def judge_ping_loss(link: str, end: End, peer: End, ping: PingResult | None, max_loss_percent: float = 0.0) -> Check:
    """Pings between the two ends come back, all of them unless the inventory allows some loss
    (sparkctl_max_loss_percent)."""
    expected = f"at most {max_loss_percent:g}% loss"
    if ping is None:
        return skipped(link, "loss", expected)
    if ping.error:
        return Check(link, "loss", ping.error, expected, False,
                     f"ping from {end} could not start ({ping.error}): give {end.interface} its planned "
                     f"address: run sparkctl provision")
    if ping.unreachable and ping.received == 0:
        return Check(link, "loss", "unreachable", expected, False,
                     f"{peer} does not answer ARP from {end}: both ends must be on the same subnet (run "
                     f"sparkctl provision) and {_cable(end, peer)} must go where the plan says")
    if ping.loss_percent > max_loss_percent:
        return Check(link, "loss", f"{ping.loss_percent:g}% lost", expected, False,
                     f"{ping.loss_percent:g}% of pings from {end} to {peer} were lost: look for rising "
                     f"errors in `ethtool -S {end.interface}`, then reseat or replace {_cable(end, peer)}")
    return Check(link, "loss", f"{ping.loss_percent:g}% lost", expected, True,
                 "no loss" if ping.loss_percent == 0 else "within sparkctl_max_loss_percent")


def judge_retransmits(link: str, end: End, peer: End, result: IperfResult | None, mtu: int,
                      max_rate: float = 1e-4) -> Check:
    """TCP retransmitted under `max_rate` of its segments during the bandwidth test."""
    expected = f"<= {max_rate:.2%} of segments"
    if result is None or result.retransmits is None or not result.bytes_sent:
        return skipped(link, "loss", expected)
    segments = result.bytes_sent / max(mtu - TCP_HEADERS, 1)
    rate = result.retransmits / segments
    value = f"{result.retransmits} retransmits ({rate:.3%})"
    if rate > max_rate:
        return Check(link, "loss", value, expected, False,
                     f"TCP from {end} to {peer} retransmitted {rate:.3%} of segments: look for rising "
                     f"errors in `ethtool -S {end.interface}`, then reseat or replace {_cable(end, peer)}")
    return Check(link, "loss", value, expected, True, "retransmits within bounds")


def judge_pcie(link: str, end: End, address: str, pcie: PcieLink | None,
               expected_width: int = 4, expected_speed_gts: float = 32.0) -> Check:
    """The half's PCIe link trained at Gen5 (32GT/s) x4."""
    expected = f"{expected_speed_gts:g}GT/s x{expected_width}"
    if pcie is None:
        return skipped(link, "pcie", expected)
    speed = "unknown" if pcie.speed_gts is None else f"{pcie.speed_gts:g}GT/s"
    value = f"{speed} x{pcie.width}"
    if pcie.width < expected_width:
        if pcie.width * 2 == expected_width:
            fix = ("a BIOS released before 2026-04 trains the second PCIe half at x2, which halves its "
                   f"bandwidth: update the BIOS of {end.node} and reboot")
        else:
            fix = f"reboot {end.node}; if it stays, update its BIOS"
        return Check(link, "pcie", value, expected, False, f"PCIe {address} ({end}) trained at x{pcie.width}: {fix}")
    if pcie.speed_gts is None or pcie.speed_gts < expected_speed_gts:
        return Check(link, "pcie", value, expected, False,
                     f"PCIe {address} ({end}) trained at {speed}: reboot {end.node}; if it stays, update its BIOS")
    return Check(link, "pcie", value, expected, True, "PCIe link as expected")


def judge_module(link: str, end: End, module: ModuleInfo | None) -> Check:
    """The plug in the cage is QSFP-family; the form factor is judged, never the compliance codes."""
    expected = "QSFP56-compatible (QSFP28/QSFP56/QSFP112)"
    if module is None:
        return skipped(link, "module", expected)
    name = " ".join(part for part in (module.vendor_name, module.vendor_pn) if part)
    value = module.form_factor + (f" ({name})" if name else "")
    if module.identifier in QSFP_CAGE_FITS:
        return Check(link, "module", value, expected, True, "QSFP-family cable")
    if module.form_factor in ("QSFP-DD", "OSFP"):
        fix = f"a {module.form_factor} plug does not fit a QSFP56 cage"
    elif module.form_factor == "SFP":
        fix = "an SFP module (behind a QSA adapter) limits the port far below 200G"
    else:
        fix = f"identifier {module.form_factor} is not a QSFP-family plug"
    return Check(link, "module", value, expected, False,
                 f"{end.cage} holds {value}: {fix}: use a QSFP56 or QSFP112 200G DAC "
                 f"(NVIDIA lists Amphenol NJAAKK-N911 and Luxshare LMTQF022-SD-R)")


def judge_rdma(link: str, device: str, result: PerftestResult | None,
               minimum_gbps: float = RDMA_MIN_GBPS) -> Check:
    """RDMA write bandwidth on one half's RDMA device (ib_write_bw, one process per half)."""
    expected = f">= {minimum_gbps:g} Gb/s"
    if result is None:
        return skipped(link, "rdma", expected)
    if result.error is not None or result.average_gbps is None:
        return Check(link, "rdma", "error", expected, False,
                     f"ib_write_bw on {device} failed ({result.error}): pass the RoCE v2 IPv4 GID index "
                     f"with -x (read it from /sys/class/infiniband/{device}/ports/1/gid_attrs/types; it is "
                     f"usually 3 but drifts) and check both ends are addressed")
    return _bandwidth_verdict(link, "rdma", result.average_gbps, minimum_gbps, f"the cable of {device}",
                              "another job on the link or a degraded cable")


def nccl_minimum(nodes: int, ring: bool) -> float | None:
    """NVIDIA's all_gather busbw threshold (GB/s): 21.875 for two nodes, 10 for a ring of three."""
    if ring:
        return NCCL_MIN_BUSBW_RING3 if nodes == 3 else None
    return NCCL_MIN_BUSBW.get(nodes)


def judge_nccl(link: str, result: NcclResult | None, minimum_gbs: float | None) -> Check:
    """all_gather_perf out-of-place busbw at the largest size meets NVIDIA's threshold."""
    expected = "no published threshold" if minimum_gbs is None else f">= {minimum_gbs:g} GB/s"
    if result is None or minimum_gbs is None:
        return skipped(link, "nccl", expected)
    if result.errors or result.busbw is None:
        first = result.errors[0] if result.errors else "no result row"
        return Check(link, "nccl", "error", expected, False,
                     f"nccl-tests failed ({first}): NCCL_IB_HCA must list only the RDMA devices of cabled, "
                     f"addressed halves (sparkctl writes it; check it reached the container)")
    value = f"{result.busbw:g} GB/s"
    if result.wrong:
        return Check(link, "nccl", value, expected, False,
                     "nccl-tests reported corrupted results (#wrong or out-of-bounds values): rerun; if it "
                     "repeats, run ib_write_bw on each half to find the bad one")
    if result.busbw < minimum_gbs:
        return Check(link, "nccl", value, expected, False,
                     f"busbw {value} is below {minimum_gbs:g} GB/s: set MTU 9000 on every fabric interface "
                     f"and list both halves' RDMA devices in NCCL_IB_HCA: run sparkctl provision")
    return Check(link, "nccl", value, expected, True, "NCCL bandwidth as expected")


def judge_peer(link: str, end: End, expected_peer: str, report: PeerProbeReport | None,
               direct: bool = True) -> Check:
    """The identity heard on `end` is the planned `node:interface`; on a direct cable, only that one."""
    if report is None:
        return skipped(link, "peer", expected_peer)
    if report.error:
        return Check(link, "peer", "error", expected_peer, False, f"peer probe on {end} failed: {report.error}")
    heard = [str(identity) for identity in report.heard]
    value = ", ".join(heard) or "nobody"
    if not heard:
        return Check(link, "peer", value, expected_peer, False,
                     f"{end} heard no peer: check that the probe ran on {expected_peer.split(':')[0]} "
                     f"at the same time and that the cable in {end.cage} is plugged in at both ends")
    if expected_peer not in heard:
        return Check(link, "peer", value, expected_peer, False,
                     f"{end} is cabled to {heard[0]}, the plan expects {expected_peer}: move the cable "
                     f"to the planned cage or change the cabling in the inventory")
    if direct and len(heard) > 1:
        return Check(link, "peer", value, expected_peer, False,
                     f"{end} hears {len(heard)} nodes, so it is not a direct cable: set the topology to "
                     f"`switch` in the inventory or connect the Sparks directly")
    return Check(link, "peer", value, expected_peer, True, "peer as planned")
