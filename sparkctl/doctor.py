"""`sparkctl doctor`: what drifted on the cluster since it was provisioned, each finding with its fix.

Read-only. Every node is read at once in one SSH round trip (sparkctl/node/doctor_facts.py) and
compared here with the plan for the cabling provisioning recorded: the live fabric (fabric_state),
the files provisioning wrote, IPv4 forwarding and the FORWARD chain on nodes that route, carrier,
which daemon manages the fabric and the management port (where NetworkManager runs),
parity of kernel, driver and firmware across nodes, the RoCE GID index of each RDMA device across
nodes, and the health of deployed services.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkctl import hardware, ssh
from sparkctl.ansible_bridge import parse_discovered
from sparkctl.errors import EnvironmentProblem
from sparkctl.model import ClusterPlan
from sparkctl.node import doctor_facts, watch
from sparkctl.node.fabric_state import drift
from sparkctl.parallel import parallel
from sparkctl.planner import build_plan
from sparkctl.render import CABLING_PATH, FILES, node_files
from sparkctl.settings import ClusterSettings

FACTS_SOURCE = Path(doctor_facts.__file__).read_text(encoding="utf-8")
REAPPLY = "sparkctl doctor --fix (or sparkctl provision)"
OWNED_FILES = ("env", "profile", "systemd", "sysctl")
"""Files provisioning writes whose content doctor compares with the plan (netplan: through the live state)."""
_POLICY = re.compile(r"^-P FORWARD (\w+)", re.MULTILINE)


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


def gather(targets: Mapping[str, ssh.SSHTarget], paths: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each node's facts, all nodes at once."""
    def one(name: str) -> dict[str, Any]:
        result = ssh.run(targets[name], ["python3", "-", *paths], input=FACTS_SOURCE, timeout=60)
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


def _forwarding(plan: ClusterPlan, node: str, facts: Mapping[str, Any]) -> list[Finding]:
    if plan.nodes[node].sysctl.get("net.ipv4.ip_forward") != "1":
        return []
    found = []
    if facts.get("ip_forward") != "1":
        found.append(Finding(node, "net.ipv4.ip_forward", str(facts.get("ip_forward")), "1 (it routes the ring)",
                             REAPPLY))
    policy = _POLICY.search(facts.get("forward_chain") or "")
    if policy and policy.group(1) != "ACCEPT":
        devices = [i.name for i in plan.nodes[node].interfaces]
        accept = "; ".join(f"iptables -I DOCKER-USER -i {d} -j ACCEPT" for d in devices[:2])
        found.append(Finding(node, "iptables FORWARD policy", policy.group(1),
                             "ACCEPT for the fabric (it routes the ring)",
                             f"Docker sets it to DROP: let the fabric through with {accept} (one per fabric "
                             f"interface), or iptables -P FORWARD ACCEPT", False))
    return found


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
    findings = []
    for check, by_node in values.items():
        common, _ = Counter(by_node.values()).most_common(1)[0]
        for node, value in by_node.items():
            if value != common:
                findings.append(Finding(node, f"{check} parity", value, f"{common} (as on the other Sparks)",
                                        f"bring {node}'s {check} in line with the other Sparks", False))
    return findings


def _gid_indexes(facts: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """The RoCE v2 IPv4 GID index of each RDMA device must agree across nodes (NCCL uses one index)."""
    indexes: dict[str, dict[str, str]] = {}
    for node, found in facts.items():
        for device, entries in (found.get("gids") or {}).items():
            indexes.setdefault(device, {})[node] = ",".join(e["index"] for e in entries) or "none"
    findings = []
    for device, by_node in indexes.items():
        if len(set(by_node.values())) > 1:
            common, _ = Counter(by_node.values()).most_common(1)[0]
            for node, value in by_node.items():
                if value != common:
                    findings.append(Finding(node, f"{device} RoCE v2 GID index", value, common,
                                            "leave NCCL_IB_GID_INDEX unset so NCCL finds each node's index; "
                                            "re-run sparkctl verify-link", False))
    return findings


def examine(settings: ClusterSettings, plan: ClusterPlan, facts: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """Every finding on every node, in node order."""
    findings: list[Finding] = []
    for node in facts:
        findings += _fabric(plan, node, facts[node]) + _files(plan, node, facts[node])
        findings += _forwarding(plan, node, facts[node]) + _renderers(plan, node, facts[node])
    return findings + _parity(facts, plan) + _gid_indexes(facts)


READ_FILES = [path for kind, path, _, _ in FILES if kind in (*OWNED_FILES, "cabling")] + [str(watch.HEALTH)]
"""The files doctor reads on every node: what provisioning wrote, and the on-node watch's health.json."""
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
