"""`sparkctl doctor` on a provisioned ring of four lab Sparks: one fault at a time, doctor names exactly that
fault (and what follows from it on the same link) and nothing else; --fix re-applies what provisioning owns."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.labkit import SPARKCTL, Lab, running_lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def ring(lab_root: Path) -> Iterator[Lab]:
    with running_lab(lab_root, nodes=4, topology="ring", prefix="dr") as lab:
        result = subprocess.run([SPARKCTL, "provision", "--inventory", str(lab.inventory)],
                                capture_output=True, text=True, timeout=900, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        yield lab


def _doctor(lab: Lab, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    result = subprocess.run([SPARKCTL, "doctor", "--inventory", str(lab.inventory), "--json", *extra],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return result.returncode, json.loads(result.stdout)["findings"]


def _seen(findings: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(f["node"], f["check"], f["found"]) for f in findings]


def test_a_provisioned_ring_is_clean(ring: Lab) -> None:
    assert _doctor(ring) == (0, [])


def test_mtu_reset_on_one_half(ring: Lab) -> None:
    ring.sh("spark2", "ip", "link", "set", "enP2p1s0f1np1", "mtu", "1500")
    try:
        code, findings = _doctor(ring)
        assert code == 1 and _seen(findings) == [("spark2", "enP2p1s0f1np1 MTU", "1500")]
        assert findings[0]["expected"] == "9000" and "doctor --fix" in findings[0]["fix"]
    finally:
        ring.sh("spark2", "ip", "link", "set", "enP2p1s0f1np1", "mtu", "9000")
    assert _doctor(ring) == (0, [])


def test_flushed_addresses_are_named_and_fixed(ring: Lab) -> None:
    ring.sh("spark3", "ip", "-4", "address", "flush", "dev", "enp1s0f0np0")
    code, findings = _doctor(ring)
    assert code == 1 and findings, findings
    assert {f["node"] for f in findings} == {"spark3"}
    assert all(f["check"].startswith("enp1s0f0np0 ") for f in findings), findings
    assert ("spark3", "enp1s0f0np0 address", "absent") in _seen(findings)
    code, findings = _doctor(ring, "--fix")
    assert (code, findings) == (0, [])


def test_a_link_down(ring: Lab) -> None:
    ring.cli("fault", "spark1:enp1s0f0np0", "--down")
    try:
        code, findings = _doctor(ring)
        peer = next(c for c in ring.cables() if "spark1:p0" in (str(c.a), str(c.b)))
        other = peer.b.node if peer.a.node == "spark1" else peer.a.node
        assert code == 1
        assert sorted(_seen(findings)) == sorted([("spark1", "enp1s0f0np0 admin state", "down"),
                                                  (other, "enp1s0f1np1 carrier", "none")])
    finally:
        ring.cli("fault", "spark1:enp1s0f0np0", "--clear")


def test_forwarding_off_on_a_ring_node(ring: Lab) -> None:
    ring.sh("spark2", "sysctl", "-qw", "net.ipv4.ip_forward=0")
    try:
        code, findings = _doctor(ring)
        assert code == 1 and _seen(findings) == [("spark2", "net.ipv4.ip_forward", "0")]
    finally:
        ring.sh("spark2", "sysctl", "-qw", "net.ipv4.ip_forward=1")


def test_docker_style_forward_drop_on_a_ring_node(ring: Lab) -> None:
    ring.sh("spark3", "iptables", "-P", "FORWARD", "DROP")
    try:
        code, findings = _doctor(ring)
        assert code == 1 and _seen(findings) == [("spark3", "iptables FORWARD policy", "DROP")]
        assert "DOCKER-USER" in findings[0]["fix"] and not findings[0]["provisioned"]
    finally:
        ring.sh("spark3", "iptables", "-P", "FORWARD", "ACCEPT")
    assert _doctor(ring) == (0, [])


def _watch(lab: Lab, node: str, *extra: str) -> dict[str, Any]:
    """Run the node's watch once, as its timer does (or with extra flags), and return its health.json."""
    if extra:
        lab.sh(node, "env", "PYTHONPATH=/var/lib/sparkctl/lib", "python3", "-m", "sparkctl_node.watch",
               "--textfile", "/var/lib/prometheus/node-exporter/sparkctl.prom", *extra)
    else:
        lab.sh(node, "systemctl", "start", "sparkctl-watch.service")
    return dict(json.loads(lab.sh(node, "cat", "/var/lib/sparkctl/health.json").stdout))


def test_the_on_node_watch_logs_a_drift_once_exports_it_and_heals_it(ring: Lab) -> None:
    assert ring.sh("spark3", "systemctl", "is-enabled", "sparkctl-watch.timer").stdout.strip() == "enabled"
    assert _watch(ring, "spark3")["findings"] == []
    ring.sh("spark3", "ip", "link", "set", "enp1s0f1np1", "mtu", "1500")
    first = _watch(ring, "spark3")
    second = _watch(ring, "spark3")
    drift = "enp1s0f1np1: MTU is 1500, planned 9000"
    assert [f["text"] for f in second["findings"]] == [drift]
    assert second["findings"][0]["first_seen"] == first["findings"][0]["first_seen"]
    journal = ring.sh("spark3", "journalctl", "-u", "sparkctl-watch.service", "-o", "cat", "--no-pager").stdout
    assert journal.count(f"drift: {drift}") == 1, journal  # once, not every tick
    metrics = ring.sh("spark3", "cat", "/var/lib/prometheus/node-exporter/sparkctl.prom").stdout
    assert "sparkctl_fabric_drift 1" in metrics and 'sparkctl_link_mtu{interface="enp1s0f1np1"} 1500' in metrics
    healed = _watch(ring, "spark3", "--heal")
    assert healed["findings"] == [] and healed["history"][-1]["event"] == "healed"
    assert ring.sh("spark3", "cat", "/sys/class/net/enp1s0f1np1/mtu").stdout.strip() == "9000"
    result = subprocess.run([SPARKCTL, "doctor", "--inventory", str(ring.inventory), "--json"],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [(e["event"], e["text"]) for e in json.loads(result.stdout)["watch"]["spark3"]]
    assert events[-2:] == [("drift", drift), ("healed", drift)]
