"""`sparkctl doctor`: what drifted on the cluster since it was provisioned, each finding with its fix.

Nothing on a node changes but doctor's own record of its error counters (the baseline of "grew since
the last look"). Every node is read at once in one SSH round trip (sparkctl/node/doctor_facts.py) and
compared here with the plan for the cabling provisioning recorded: the live fabric (fabric_state),
the files provisioning wrote, IPv4 forwarding and the FORWARD and DOCKER-USER chains on nodes that
route, carrier, negotiated speed, the PCIe link of each fabric netdev against its maximum, error
counters that grew since doctor's last look, which daemon manages the fabric and the management port
(where NetworkManager runs), parity of kernel, driver, firmware and NCCL across nodes, the RoCE GID
index of each RDMA device across nodes, and the health of deployed services. What a node cannot show
(no PCI device behind a veth, no RDMA device, no earlier look at the counters) is listed as not
checked, never passed as healthy.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkctl import hardware, ssh
from sparkctl.ansible_bridge import parse_discovered
from sparkctl.errors import EnvironmentProblem
from sparkctl.model import ClusterPlan
from sparkctl.node import doctor_facts, rollback, watch
from sparkctl.node.fabric_state import drift
from sparkctl.parallel import parallel
from sparkctl.planner import build_plan
from sparkctl.render import CABLING_PATH, FILES, node_files
from sparkctl.settings import ClusterSettings
from sparkctl.verify.parse_pcie import PcieLink, parse_pcie_sysfs
from sparkctl.verify.parsing import ParseError

FACTS_SOURCE = Path(doctor_facts.__file__).read_text(encoding="utf-8")
REAPPLY = "sparkctl doctor --fix (or sparkctl provision)"
OWNED_FILES = ("env", "profile", "systemd", "sysctl")
"""Files provisioning writes whose content doctor compares with the plan (netplan: through the live state)."""
_POLICY = re.compile(r"^-P FORWARD (\w+)", re.MULTILINE)
_RULE_OPTIONS = {"-i", "-o", "-j"}


@dataclass(frozen=True)
class Finding:
    node: str
    check: str
    found: str
    expected: str
    fix: str
    provisioned: bool = True
    """Provisioning owns it: `doctor --fix` re-applies it. False for what sparkctl does not manage."""

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "check": self.check, "found": self.found, "expected": self.expected,
                "fix": self.fix, "provisioned": self.provisioned}


@dataclass(frozen=True)
class NotChecked:
    """A check a node cannot answer (no PCI device behind a veth, no RDMA device): said, not passed."""

    node: str
    check: str
    why: str
    device: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"node": self.node, "device": self.device, "check": self.check, "why": self.why}


def gather(targets: Mapping[str, ssh.SSHTarget], paths: Sequence[str], images: Mapping[str, Sequence[str]] | None = None,
           container_cli: str | None = None) -> dict[str, dict[str, Any]]:
    """Each node's facts, all nodes at once (with the IDs of `images[node]`, the images deployed there)."""
    def one(name: str) -> dict[str, Any]:
        request = json.dumps({"devices": list(hardware.ALL_NETDEVS), "files": list(paths),
                              "images": list((images or {}).get(name, ())), "container_cli": container_cli,
                              "units": list(UNIT_FILES)})
        result = ssh.run(targets[name], ["python3", "-", request], input=FACTS_SOURCE, timeout=60)
        try:
            facts = json.loads(result.stdout)
        except ValueError:
            raise EnvironmentProblem(f"{name}: the doctor's fact collector printed no JSON: "
                                     f"{(result.stderr or result.stdout).strip()[-300:]}") from None
        assert isinstance(facts, dict)
        return facts

    names = list(targets)
    return dict(zip(names, parallel(one, names), strict=True))


def plan_as_provisioned(settings: ClusterSettings, facts: Mapping[str, Mapping[str, Any]]) -> ClusterPlan:
    """The plan for the pinned cabling, else for the cabling provisioning recorded on a node."""
    if settings.cabling is None:
        for node, found in facts.items():
            text = found.get("files", {}).get(CABLING_PATH)
            try:
                recorded = json.loads(text) if text else None
            except ValueError:
                recorded = None
            if isinstance(recorded, dict) and recorded.get("cables"):
                names = [n.name for n in settings.nodes]
                return build_plan(settings, parse_discovered(recorded["cables"], names, f"{CABLING_PATH} on {node}"))
    return build_plan(settings)


def _fabric(plan: ClusterPlan, node: str, facts: Mapping[str, Any]) -> list[Finding]:
    ports = {i.name: i.port for i in plan.nodes[node].interfaces}
    found = []
    for d in drift(plan.nodes[node].to_dict(), facts.get("addresses", []), facts.get("routes", [])):
        if d.check == "carrier":
            fix = f"check the cable in {node}:{ports.get(d.interface, '?')} and its peer (sparkctl verify-link)"
            found.append(Finding(node, f"{d.interface} carrier", d.found, d.expected, fix, False))
        else:
            found.append(Finding(node, f"{d.interface} {d.check}", d.found, d.expected, REAPPLY))
    return found


def _files(plan: ClusterPlan, node: str, facts: Mapping[str, Any]) -> list[Finding]:
    planned = node_files(plan, node)
    found = []
    for kind in OWNED_FILES:
        wanted = planned[kind]
        have = facts.get("files", {}).get(wanted.path)
        if have != wanted.content:
            found.append(Finding(node, wanted.path, "absent" if have is None else "different content",
                                 "as planned", REAPPLY))
    return found


def _unit_programs(node: str, facts: Mapping[str, Any]) -> list[Finding]:
    """A unit provisioning installed whose program is gone from the node: it fails when it next starts."""
    return [Finding(node, f"{Path(unit).name} program", f"{seen['program']} (not on the node)",
                    "a program the node has (provisioning names the system's python3)", REAPPLY)
            for unit, seen in (facts.get("unit_programs") or {}).items() if not seen.get("present")]


def _forwarding(plan: ClusterPlan, node: str, facts: Mapping[str, Any]) -> list[Finding]:
    if plan.nodes[node].sysctl.get("net.ipv4.ip_forward") != "1":
        return []
    found = []
    if facts.get("ip_forward") != "1":
        found.append(Finding(node, "net.ipv4.ip_forward", str(facts.get("ip_forward")), "1 (it routes the ring)",
                             REAPPLY))
    forward = facts.get("forward_chain") or ""
    policy = _POLICY.search(forward)
    if policy and policy.group(1) != "ACCEPT":
        devices = [i.name for i in plan.nodes[node].interfaces]
        accepted = accepted_inputs(forward, facts.get("docker_user_chain"), devices)
        missing = [d for d in devices if d not in accepted]
        if missing:
            state = policy.group(1) + (f", ACCEPT only from {', '.join(sorted(accepted))}" if accepted else "")
            accept = "; ".join(f"iptables -I DOCKER-USER -i {d} -j ACCEPT" for d in missing)
            found.append(Finding(node, "iptables FORWARD policy", state,
                                 "ACCEPT for the fabric (it routes the ring)",
                                 f"Docker sets it to DROP: let the fabric through with {accept}, "
                                 "or iptables -P FORWARD ACCEPT", False))
    return found


def accepted_inputs(forward: str, docker_user: str | None, devices: Sequence[str]) -> set[str]:
    """The fabric devices whose forwarded traffic a plain `-i DEV [-o FABRIC] -j ACCEPT` rule lets through
    despite a DROP policy: in FORWARD itself, or in DOCKER-USER when FORWARD jumps to it (as Docker sets
    it up). Rules with other matches are not judged and do not count."""
    chains = [forward] + ([docker_user] if docker_user and "-A FORWARD -j DOCKER-USER" in forward else [])
    accepted = set()
    for line in "\n".join(chains).splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "-A" or len(words) % 2:
            continue
        options = dict(zip(words[2::2], words[3::2], strict=True))
        if (set(options) <= _RULE_OPTIONS and options.get("-j") == "ACCEPT"
                and options.get("-i") in devices and options.get("-o", options["-i"]) in devices):
            accepted.add(options["-i"])
    return accepted


def _link_health(plan: ClusterPlan, node: str, facts: Mapping[str, Any], expected_speed_mbps: int) -> list[Finding]:
    """Negotiated speed, the PCIe link against its maximum and error counters grown since the last look, for
    each planned fabric netdev (what cannot be read is in not_checked)."""
    found = []
    before = facts.get("counters_before") or {}
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(before["at"])) if "at" in before else ""
    for interface in plan.nodes[node].interfaces:
        device, cage = interface.name, f"{node}:{interface.port}"
        figures = (facts.get("links") or {}).get(device) or {}
        speed = figures.get("speed_mbps")
        if figures.get("carrier") == 1 and speed is not None and speed < expected_speed_mbps:
            found.append(Finding(node, f"{device} speed", f"{speed} Mb/s", f"{expected_speed_mbps} Mb/s",
                                 f"the link trained below its speed: reseat the cable in {cage}, check "
                                 f"`ethtool {device}` on both ends, then sparkctl verify-link", False))
        link = _pcie(facts, device)
        if link is not None and (link.width_downgraded or link.speed_downgraded):
            address = (facts.get("pcie") or {})[device]["address"]
            found.append(Finding(node, f"{device} PCIe link", f"x{link.width} at {_gts(link.speed_gts)} ({address})",
                                 f"x{link.max_width} at {_gts(link.max_speed_gts)} (the device's maximum)",
                                 f"the PCIe link of {device} trained below its maximum, which cuts its bandwidth "
                                 f"(x2 instead of x4 halves it: a BIOS released before 2026-04 trains the second "
                                 f"half so): update the BIOS of {node}, else power it off and on", False))
        grown = doctor_facts.counter_growth(((before.get("counters") or {}).get(device)),
                                            (facts.get("counters") or {}).get(device))
        if grown:
            found.append(Finding(node, f"{device} error counters",
                                 ", ".join(f"{name} +{count}" for name, count in sorted(grown.items()))
                                 + f" since {since}", "no growth",
                                 f"`ethtool -S {device}` on {node}: CRC, symbol and PHY errors point at the cable "
                                 f"in {cage} (reseat or replace it); drops and discards at MTU or a receiver "
                                 "that cannot keep up", False))
    return found


def _gts(speed: float | None) -> str:
    return "unknown speed" if speed is None else f"{speed:g} GT/s"


def _pcie(facts: Mapping[str, Any], device: str) -> PcieLink | None:
    """The device's PCIe link parsed as verify-link parses it, None when not readable."""
    files = (facts.get("pcie") or {}).get(device)
    if not files:
        return None
    try:
        return parse_pcie_sysfs(files["current_link_speed"] or "", files["current_link_width"] or "",
                                files["max_link_speed"] or "", files["max_link_width"] or "")
    except ParseError:
        return None


def not_checked(plan: ClusterPlan, facts: Mapping[str, Mapping[str, Any]]) -> list[NotChecked]:
    """What each node cannot answer, so a clean report never passes for checks that did not run."""
    out = []
    for node, found in facts.items():
        for interface in plan.nodes[node].interfaces:
            device = interface.name
            files = (found.get("pcie") or {}).get(device)
            if device in (found.get("links") or {}) and _pcie(found, device) is None:
                why = ("no PCI device behind the netdev" if not files
                       else f"unreadable link files: {', '.join(f'{k}={v!r}' for k, v in files.items())}")
                out.append(NotChecked(node, "PCIe link", why, device))
        if not found.get("counters_before"):
            out.append(NotChecked(node, "error counter growth", "first look: the counters read now are the "
                                                                "baseline for the next run"))
        if not found.get("gids"):
            out.append(NotChecked(node, "RoCE GID index", "no RDMA device"))
        if plan.nodes[node].sysctl.get("net.ipv4.ip_forward") == "1" and found.get("forward_chain") is None:
            out.append(NotChecked(node, "iptables FORWARD policy", "`iptables -S FORWARD` gave nothing (not "
                                                                   "installed, or it failed)"))
    return out


def _renderers(plan: ClusterPlan, node: str, facts: Mapping[str, Any]) -> list[Finding]:
    """systemd-networkd renders the fabric; where NetworkManager runs, it must keep off the fabric devices and
    networkd must keep off the management port (NetworkManager's)."""
    seen = facts.get("renderers") or {}
    if not seen.get("networkmanager_active"):
        return []
    found = []
    nm = seen.get("networkmanager", {})
    fabric = [i.name for i in plan.nodes[node].interfaces] + [b.name for b in plan.nodes[node].bonds]
    for device in fabric:
        state = nm.get(device)
        if state is not None and state != "unmanaged":
            found.append(Finding(node, f"{device} renderer", f"NetworkManager ({state})",
                                 "systemd-networkd (NetworkManager leaves it unmanaged)", REAPPLY))
    management = hardware.MANAGEMENT_INTERFACE
    if seen.get("networkd", {}).get(management) not in (None, "", "unmanaged"):
        found.append(Finding(node, f"{management} renderer", f"systemd-networkd ({seen['networkd'][management]})",
                             "NetworkManager, as the node's own netplan files say",
                             f"remove the netplan file that gives {management} to networkd (sparkctl's drop-in "
                             "never names it)", False))
    return found


def _parity(facts: Mapping[str, Mapping[str, Any]], plan: ClusterPlan) -> list[Finding]:
    """Kernel, and driver and firmware of the fabric netdevs, the same on every node; each outlier named."""
    values: dict[str, dict[str, str]] = {}
    for node, found in facts.items():
        values.setdefault("kernel", {})[node] = str(found.get("kernel"))
        fabric = [i.name for i in plan.nodes[node].interfaces] or list(hardware.ALL_NETDEVS)
        for key, label in (("driver", "driver"), ("version", "driver version"), ("firmware-version", "firmware")):
            seen = {str((found.get("drivers", {}).get(n) or {}).get(key, "")) for n in fabric}
            values.setdefault(label, {})[node] = ", ".join(sorted(seen))
        values.setdefault("NCCL (libnccl2)", {})[node] = str(found.get("nccl") or "not installed")
    return [finding for check, by_node in values.items()
            for finding in _outliers(by_node, f"{check} parity",
                                     "bring {node}'s " + check + " in line with the other Sparks")]


def _outliers(by_node: Mapping[str, str], check: str, fix: str, as_on_others: bool = True) -> list[Finding]:
    """A finding for every node whose value differs from the one most nodes have (nodes that must agree);
    `{node}` in `fix` names the node."""
    common, _ = Counter(by_node.values()).most_common(1)[0]
    should = f"{common} (as on the other Sparks)" if as_on_others else common
    return [Finding(node, check, value, should, fix.replace("{node}", node), False)
            for node, value in by_node.items() if value != common]


def _image_ids(facts: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """Each service image resolves to the same local image ID on every node that runs it: a tag re-pulled on
    one node later can bring a different build."""
    ids: dict[str, dict[str, str]] = {}
    for node, found in facts.items():
        for image, image_id in (found.get("images") or {}).items():
            ids.setdefault(image, {})[node] = image_id or "not pulled"
    return [finding for image, by_node in ids.items()
            for finding in _outliers(by_node, f"image {image} parity",
                                     f"pin {image} by digest (@sha256:...) and run sparkctl deploy")]


def _gids_for_nccl(plan: ClusterPlan, node: str, facts: Mapping[str, Any]) -> list[Finding]:
    """Each RDMA device the environment gives NCCL (NCCL_IB_HCA) has a RoCE v2 IPv4 GID to use, as the
    environment's NCCL_IB_ROCE_VERSION_NUM=2 and NCCL_IB_ADDR_FAMILY=AF_INET expect. Nodes without any
    RDMA device are in not_checked."""
    gids = facts.get("gids") or {}
    if not gids:
        return []
    found = []
    for hca in filter(None, plan.nodes[node].env.get("NCCL_IB_HCA", "").split(",")):
        device = hca.strip().lstrip("=^").split(":")[0]
        entries = gids.get(device)
        if not entries:
            found.append(Finding(node, f"{device} RoCE v2 GID", "no such RDMA device" if entries is None else "none",
                                 "a RoCE v2 IPv4 GID (NCCL_IB_HCA names the device)",
                                 f"the GID appears once the device's netdev has its fabric address (any address "
                                 f"finding first); `ibv_devinfo -d {device}` shows the port", False))
    return found


def _gid_indexes(facts: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """The RoCE v2 IPv4 GID index of each RDMA device must agree across nodes (NCCL uses one index)."""
    indexes: dict[str, dict[str, str]] = {}
    for node, found in facts.items():
        for device, entries in (found.get("gids") or {}).items():
            indexes.setdefault(device, {})[node] = ",".join(e["index"] for e in entries) or "none"
    return [finding for device, by_node in indexes.items()
            for finding in _outliers(by_node, f"{device} RoCE v2 GID index",
                                     "leave NCCL_IB_GID_INDEX unset so NCCL finds each node's index; "
                                     "re-run sparkctl verify-link", as_on_others=False)]


def examine(settings: ClusterSettings, plan: ClusterPlan, facts: Mapping[str, Mapping[str, Any]],
            expected_speed_mbps: int = hardware.LINK_SPEED_MBPS) -> list[Finding]:
    """Every finding on every node, in node order."""
    findings: list[Finding] = []
    for node in facts:
        findings += _fabric(plan, node, facts[node]) + _files(plan, node, facts[node])
        findings += _link_health(plan, node, facts[node], expected_speed_mbps)
        findings += _forwarding(plan, node, facts[node]) + _renderers(plan, node, facts[node])
        findings += _gids_for_nccl(plan, node, facts[node]) + _unit_programs(node, facts[node])
    return findings + _parity(facts, plan) + _image_ids(facts) + _gid_indexes(facts)


READ_FILES = [path for kind, path, _, _ in FILES if kind in (*OWNED_FILES, "cabling")] + [str(watch.HEALTH)]
"""The files doctor reads on every node: what provisioning wrote, and the on-node watch's health.json."""
UNIT_FILES = (str(rollback.BOOT_UNIT), str(watch.UNIT_DIR / f"{watch.UNIT}.service"))
"""The long-lived units provisioning installs, whose programs doctor checks are still on the node."""
WATCH_EVENTS_SHOWN = 10


@dataclass(frozen=True)
class WatchEvent:
    """One change the on-node watch logged: drift first seen, cleared, healed, GID index moved."""

    node: str
    at: float
    event: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "at": self.at, "event": self.event, "text": self.text}


def watch_history(facts: Mapping[str, Mapping[str, Any]]) -> dict[str, list[WatchEvent]]:
    """Each node's latest watch events (None for a node without the watch, or whose health.json is unreadable)."""
    out: dict[str, list[WatchEvent]] = {}
    for node, found in facts.items():
        text = found.get("files", {}).get(str(watch.HEALTH))
        try:
            history = json.loads(text)["history"] if text else None
        except (ValueError, KeyError, TypeError):
            history = None
        if isinstance(history, list):
            out[node] = [WatchEvent(node, float(e.get("at", 0)), str(e.get("event", "")), str(e.get("text", "")))
                         for e in history[-WATCH_EVENTS_SHOWN:] if isinstance(e, dict)]
    return out
