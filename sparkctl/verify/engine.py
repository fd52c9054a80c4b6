"""verify-link: measure every planned link on the nodes and judge each measurement.

Order matters because a later check means nothing when an earlier one failed: facts (carrier,
speed, MTU, addresses) first, then the peer probe on halves that have carrier, then path-MTU and
loss pings on halves that are addressed, then iperf3 on cables whose halves answer. Within each
step every link runs at once. A skipped check says why; it never counts as a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sparkctl import hardware, ssh
from sparkctl.ansible_bridge import parse_discovered
from sparkctl.errors import InputError
from sparkctl.model import Cable, ClusterPlan, Endpoint, Link
from sparkctl.node.node_facts import CABLING_RECORD
from sparkctl.parallel import parallel
from sparkctl.planner import build_plan
from sparkctl.settings import ClusterSettings
from sparkctl.verify import probes, rdma
from sparkctl.verify.expectations import Expectations
from sparkctl.verify.parse_ethtool import parse_ethtool, parse_ethtool_module
from sparkctl.verify.parse_iperf import IperfResult
from sparkctl.verify.parse_pcie import parse_pcie_sysfs
from sparkctl.verify.parse_peer import PeerProbeReport
from sparkctl.verify.parse_ping import PingResult
from sparkctl.verify.parsing import ParseError
from sparkctl.verify.verdicts import (
    Check,
    End,
    judge_bandwidth,
    judge_cable_bandwidth,
    judge_carrier,
    judge_module,
    judge_mtu,
    judge_mtu_path,
    judge_pcie,
    judge_peer,
    judge_ping_loss,
    judge_speed,
)

Progress = Callable[[str], None]

LOSS_PINGS = 500
LOSS_INTERVAL_S = 0.002
PROBE_LISTEN_S = 2.0


@dataclass(frozen=True)
class Options:
    duration_s: float = 5.0
    streams: int = 4
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class CableFigures:
    """What one cable carried (iperf3, both halves at once) and its loss pings' round trip."""

    cable: str
    halves_gbps: tuple[float, ...]
    rtt_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"cable": self.cable, "halves_gbps": list(self.halves_gbps), "gbps": sum(self.halves_gbps),
                "rtt_ms": self.rtt_ms}


@dataclass
class Report:
    plan: ClusterPlan
    checks: list[Check] = field(default_factory=list)
    measured: list[CableFigures] = field(default_factory=list)
    """Cables whose every half was measured, for `sparkctl advise` (saved by the command)."""

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def to_dict(self) -> dict[str, Any]:
        by_link: dict[str, list[dict[str, Any]]] = {}
        for c in self.checks:
            by_link.setdefault(c.link, []).append(
                {"check": c.check, "value": c.value, "expected": c.expected, "ok": c.ok, "message": c.message})
        return {
            "ok": self.ok,
            "topology": self.plan.topology,
            "links": [{"name": name, "checks": checks} for name, checks in by_link.items()],
            "problems": [{"link": c.link, "check": c.check, "value": c.value, "expected": c.expected,
                          "message": c.message} for c in self.problems],
        }



def _end(link: Link, side: str) -> End:
    end = link.a if side == "a" else link.b
    return End(end.node, end.interface, end.port)


def switch_paths(plan: ClusterPlan) -> list[Link]:
    """The Spark-to-Spark paths through the switch that verify-link checks in place of cables.

    A switch has no cables to follow, so each Spark is paired with the next one (the last with the first)
    on every half of every switch port: every member's halves send and receive once each, and N Sparks
    cost N paths per half instead of all N*(N-1)/2 pairs. A path is named like the cable it stands for.
    """
    members: dict[tuple[str, int], list[Link]] = {}
    for link in plan.links:
        if link.kind == "switch":
            members.setdefault((link.a.port, link.half), []).append(link)
    paths = []
    for (port, _), halves in members.items():
        for one, other in pairwise(halves + halves[:1] if len(halves) > 2 else halves):
            cable = Cable.between(Endpoint(one.a.node, port), Endpoint(other.a.node, port)).name
            paths.append(Link("switch", cable, one.half, one.subnet, one.a, other.a))
    return sorted(paths, key=lambda path: (path.cable, path.half))


def select_links(plan: ClusterPlan, wanted: Iterable[str]) -> list[Link]:
    """The planned peer links (in a switch, the paths through it), or those of the cables named on the
    command line (`A:p0-B:p0`)."""
    if plan.topology == "switch":
        links = switch_paths(plan)
    else:
        links = [link for link in plan.links if link.kind == "peer"]
    names: set[str] = set()
    for text in wanted:
        one, sep, other = text.partition("-")
        parts = [p.partition(":") for p in (one, other)]
        if not sep or any(not s or not n or port not in hardware.PORTS for n, s, port in parts):
            raise InputError(f"{text!r} is not a cable", key="--links", fix="write NODE:PORT-NODE:PORT, e.g. spark1:p0-spark2:p0")
        names.add(Cable.between(Endpoint(parts[0][0], parts[0][2]), Endpoint(parts[1][0], parts[1][2])).name)
    if names:
        unknown = names - {link.cable for link in links}
        if unknown:
            raise InputError(f"{min(unknown)} is not a planned cable", key="--links",
                             fix=f"use one of: {', '.join(dict.fromkeys(link.cable for link in links))}")
        links = [link for link in links if link.cable in names]
    if not links:
        raise InputError(f"the {plan.topology} plan has no node-to-node links to verify", key="--links",
                         fix="verify-link checks cables between Sparks (direct, dual cable, ring, storage split) "
                             "and the paths between Sparks through a switch")
    return links


class Verifier:
    """One verify-link run over a cluster's planned links."""

    def __init__(self, settings: ClusterSettings, targets: dict[str, ssh.SSHTarget], expect: Expectations,
                 options: Options, progress: Progress) -> None:
        self.settings = settings
        self.targets = targets
        self.expect = expect
        self.options = options
        self.progress = progress
        self.facts: dict[str, dict[str, Any]] = {}
        self.rtt_ms: dict[str, float] = {}

    def run(self) -> Report:
        names = [node.name for node in self.settings.nodes]
        self.progress("reading interfaces on " + ", ".join(names))
        gathered = parallel(lambda n: probes.node_facts(self.targets[n], list(hardware.ALL_NETDEVS)), names)
        self.facts = dict(zip(names, gathered, strict=True))
        plan = self._plan_as_provisioned()
        links = select_links(plan, self.options.links)
        report = Report(plan)
        usable = self._link_checks(links, report)
        self.progress(f"probing peers on {len(usable)} halves")
        peered = self._peer_checks(usable, report)
        self.progress("path MTU and loss")
        answering = self._ping_checks(peered, plan.mtu, report)
        self.progress(f"bandwidth, {self.options.duration_s:g} s per cable, all cables at once")
        self._bandwidth_checks(links, answering, report)
        self.progress("RDMA and NCCL, where the nodes have them")
        report.checks += rdma.rdma_checks(answering, self.facts, self.targets, self.options.duration_s)
        report.checks += [Check(link.name, "rdma", "", "", None, "skipped: the link failed an earlier check")
                          for link in links if link not in answering]
        report.checks.append(rdma.nccl_check(list(plan.nodes.values()), self.facts, self.targets,
                                             ring=plan.topology == "ring"))
        return report

    def _plan_as_provisioned(self) -> ClusterPlan:
        """The plan for the pinned cabling, else the one provisioning recorded on the nodes, else the
        topology's convention (CablingUnknown when there is none)."""
        if self.settings.cabling is None:
            node, recorded = next(((name, f["cabling"]) for name, f in self.facts.items()
                                   if isinstance(f.get("cabling"), dict)), ("", None))
            if recorded and recorded.get("cables"):
                source = f"{CABLING_RECORD} on {node}"
                names = [n.name for n in self.settings.nodes]
                return build_plan(self.settings, parse_discovered(recorded["cables"], names, source))
        return build_plan(self.settings)

    def _iface(self, node: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.facts[node]["interfaces"].get(name, {"exists": False})
        return found

    def _link_checks(self, links: list[Link], report: Report) -> list[Link]:
        """Carrier, speed, MTU, address, PCIe and module on both ends; returns halves fit to go on."""
        usable = []
        for link in links:
            good = True
            for side, other in (("a", "b"), ("b", "a")):
                end, peer = _end(link, side), _end(link, other)
                planned = link.a if side == "a" else link.b
                info = self._iface(end.node, end.interface)
                if not info.get("exists"):
                    report.checks.append(Check(link.name, "carrier", "missing", "interface present", False,
                                               f"{end} does not exist: is {end.node} a DGX Spark with its "
                                               "ConnectX-7 driver loaded?"))
                    good = False
                    continue
                carrier_raw = info.get("carrier")  # sysfs refuses to read it while the interface is down
                carrier = carrier_raw == "1"
                check = judge_carrier(link.name, end, peer, carrier_raw is not None, carrier)
                report.checks.append(check)
                report.checks.append(judge_mtu(link.name, end, _int(info.get("mtu")), self.settings.mtu))
                if not check.ok:  # speed and addresses of a link without carrier say nothing more
                    good = False
                    continue
                report.checks.append(judge_speed(link.name, end, peer, self._speed(info),
                                                 self.expect.link_speed_mbps))
                want = str(planned.address) if planned.address else None
                if want and want not in info.get("addresses", []):
                    report.checks.append(Check(link.name, "address", ", ".join(info.get("addresses", [])) or "none",
                                               want, False, f"{end} lacks its planned address {want}: run "
                                               "sparkctl provision"))
                    good = False
                report.checks.append(judge_pcie(link.name, end, end.interface, _pcie(info.get("pcie"))))
                report.checks.append(judge_module(link.name, end, _module(info.get("module"))))
            if good:
                usable.append(link)
            else:
                for name in ("peer", "loss", "bandwidth"):
                    report.checks.append(Check(link.name, name, "", "", None,
                                               "skipped: the link is not up and addressed (see above)"))
        return usable

    @staticmethod
    def _speed(info: dict[str, Any]) -> int | None:
        tool = info.get("ethtool")
        if tool and tool.get("rc") == 0:
            try:
                return parse_ethtool(tool["out"]).speed_mbps
            except ParseError:
                pass
        return _int(info.get("speed"))

    def _peer_checks(self, links: list[Link], report: Report) -> list[Link]:
        """Each end's probe must hear the other; through a switch it hears other members too, and an
        interface on several paths is probed once."""
        ends = list(dict.fromkeys((end.node, end.interface) for link in links for end in (link.a, link.b)))

        def probe(end: tuple[str, str]) -> PeerProbeReport | None:
            node, interface = end
            try:
                return probes.peer_probe(self.targets[node], interface, PROBE_LISTEN_S)
            except ParseError:
                return None

        heard = dict(zip(ends, parallel(probe, ends), strict=True))
        bad: set[str] = set()
        for link in links:
            for side in ("a", "b"):
                end, other = _end(link, side), _end(link, "b" if side == "a" else "a")
                check = judge_peer(link.name, end, f"{other.node}:{other.interface}",
                                   heard[(end.node, end.interface)], direct=link.kind != "switch")
                report.checks.append(check)
                if not check.ok:
                    bad.add(link.name)
        return [link for link in links if link.name not in bad]

    def _ping_checks(self, links: list[Link], mtu: int, report: Report) -> list[Link]:
        jobs: list[tuple[Link, str, str]] = []
        for link in links:
            jobs += [(link, "a", "mtu"), (link, "b", "mtu"), (link, "a", "loss")]

        def run(job: tuple[Link, str, str]) -> PingResult | None:
            link, side, kind = job
            here, there = (link.a, link.b) if side == "a" else (link.b, link.a)
            assert here.address and there.address
            source, target = str(here.address.ip), str(there.address.ip)
            if kind == "mtu":
                return probes.ping(self.targets[here.node], source, target, size=mtu - 28, count=3,
                                   dont_fragment=True)
            return probes.ping(self.targets[here.node], source, target, count=LOSS_PINGS,
                               interval_s=LOSS_INTERVAL_S)

        results = parallel(run, jobs)
        failed: set[str] = set()
        for (link, side, kind), result in zip(jobs, results, strict=True):
            end, peer = _end(link, side), _end(link, "b" if side == "a" else "a")
            if kind == "mtu":
                check = judge_mtu_path(link.name, end, peer, result, mtu)
            else:
                check = judge_ping_loss(link.name, end, peer, result, self.expect.max_loss_percent)
                if result is not None and result.rtt_avg_ms is not None:
                    self.rtt_ms[link.name] = result.rtt_avg_ms
            report.checks.append(check)
            if check.ok is False and (kind == "mtu" or result is None or result.received == 0):
                failed.add(link.name)
        return [link for link in links if link.name not in failed]

    def _bandwidth_checks(self, links: list[Link], answering: list[Link], report: Report) -> None:
        cables: dict[str, list[Link]] = {}
        for link in links:
            cables.setdefault(link.cable, []).append(link)
        ready = {link.name for link in answering}
        port = iter(range(probes.IPERF_BASE_PORT, probes.IPERF_BASE_PORT + 1000))
        jobs = [(link, next(port)) for link in answering]
        servers = [probes.IperfServer(self.targets[link.b.node], str(link.b.address.ip), number)  # type: ignore[union-attr]
                   for link, number in jobs]
        results: dict[str, IperfResult] = {}
        try:
            for server in servers:
                server.start()

            def client(job: tuple[Link, int]) -> IperfResult:
                link, number = job
                assert link.a.address and link.b.address
                return probes.iperf_client(self.targets[link.a.node], str(link.a.address.ip),
                                           str(link.b.address.ip), number, streams=self.options.streams,
                                           duration_s=self.options.duration_s)

            results = {link.name: r for (link, _), r in zip(jobs, parallel(client, jobs), strict=True)}
        finally:
            for server in servers:
                server.stop()
        for cable, halves in cables.items():
            for link in halves:
                if link.name not in ready:
                    report.checks.append(Check(link.name, "bandwidth", "", "", None,
                                               "skipped: the link failed an earlier check"))
                    continue
                result = results.get(link.name)
                check = judge_bandwidth(link.name, _end(link, "a"), _end(link, "b"), result,
                                        self.expect.min_half_gbps)
                if result is not None and result.retransmits is not None:
                    check = Check(check.link, check.check, f"{check.value}, {result.retransmits} retransmits",
                                  check.expected, check.ok, check.message)
                report.checks.append(check)
            unmeasured = [h.half for h in halves if h.name not in results]
            figures = [results[h.name].received_gbps for h in halves if h.name in results]
            if not unmeasured and all(figures):
                rtts = [self.rtt_ms[h.name] for h in halves if h.name in self.rtt_ms]
                report.measured.append(CableFigures(cable, tuple(f or 0.0 for f in figures),
                                                    max(rtts) if rtts else None))
            if len(halves) > 1 and unmeasured:
                report.checks.append(Check(cable, "bandwidth", "", "", None,
                                           f"skipped: half {unmeasured[0]} failed an earlier check"))
            elif len(halves) > 1:
                figures = [results[h.name].received_gbps for h in halves]
                report.checks.append(judge_cable_bandwidth(cable, _end(halves[0], "a"), _end(halves[0], "b"),
                                                           figures, self.expect.min_cable_gbps))


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _pcie(raw: dict[str, Any] | None) -> Any:
    if not raw or not raw.get("current_link_width"):
        return None
    try:
        return parse_pcie_sysfs(raw["current_link_speed"] or "", raw["current_link_width"] or "",
                                raw["max_link_speed"] or "", raw["max_link_width"] or "")
    except ParseError:
        return None


def _module(raw: dict[str, Any] | None) -> Any:
    if not raw or raw.get("rc") != 0:
        return None
    try:
        return parse_ethtool_module(raw["out"])
    except ParseError:
        return None
