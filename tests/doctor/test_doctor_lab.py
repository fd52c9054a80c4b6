"""`sparkctl doctor` on a provisioned ring of four lab Sparks: one fault at a time, doctor names exactly that
fault (and what follows from it on the same link) and nothing else; --fix re-applies what provisioning owns."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sparkctl import hardware
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


def _peer(lab: Lab, node: str, port: str) -> tuple[str, str]:
    """The node and port at the other end of the cable in `node:port`."""
    cable = next(c for c in lab.cables() if f"{node}:{port}" in (str(c.a), str(c.b)))
    far = cable.b if str(cable.a) == f"{node}:{port}" else cable.a
    return far.node, far.port


def test_a_provisioned_ring_is_clean_and_says_what_a_lab_cannot_show(ring: Lab) -> None:
    result = subprocess.run([SPARKCTL, "doctor", "--inventory", str(ring.inventory), "--json"],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["findings"] == []
    unread = {(n["node"], n["device"], n["check"], n["why"]) for n in report["not_checked"]}
    for node in ("spark1", "spark2", "spark3", "spark4"):
        assert (node, "", "RoCE GID index", "no RDMA device") in unread
        for device in hardware.ALL_NETDEVS:  # veths: no PCI device behind them, said rather than passed
            assert (node, device, "PCIe link", "no PCI device behind the netdev") in unread


def test_error_counters_that_grew_since_the_last_look(ring: Lab) -> None:
    """Frames a link had to drop (its peer's MTU lowered for a moment, jumbo pings sent): named once, on the
    sending end, and gone at the next look."""
    assert _doctor(ring) == (0, [])  # this look is the baseline
    peer, port = _peer(ring, "spark1", "p0")
    device = hardware.netdev(port, 0)
    address = json.loads(ring.sh(peer, "ip", "-j", "-4", "address", "show", "dev", device).stdout)[0]
    ring.sh(peer, "ip", "link", "set", device, "mtu", "1500")
    try:
        ring.sh("spark1", "ping", "-c", "3", "-i", "0.2", "-W", "1", "-M", "do", "-s", "8972",
                address["addr_info"][0]["local"], check=False)
    finally:
        ring.sh(peer, "ip", "link", "set", device, "mtu", "9000")
    code, findings = _doctor(ring)
    assert code == 1 and [(f["node"], f["check"]) for f in findings] == [("spark1", "enp1s0f0np0 error counters")]
    assert findings[0]["found"].startswith("tx_dropped +") and not findings[0]["provisioned"]
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


def test_a_unit_naming_a_python_the_node_lost_is_named_and_fixed(ring: Lab) -> None:
    """As after a release upgrade removed the versioned Python a unit was written with: the boot-time restore
    would fail when next needed. --fix re-provisions, which writes the unit with the system's python3."""
    unit = "/etc/systemd/system/sparkctl-fabric-restore.service"
    ring.sh("spark2", "sed", "-i", "s|^ExecStart=[^ ]*|ExecStart=/usr/bin/python3.99|", unit)
    code, findings = _doctor(ring)
    assert (code, _seen(findings)) == (1, [("spark2", "sparkctl-fabric-restore.service program",
                                            "/usr/bin/python3.99 (not on the node)")])
    code, findings = _doctor(ring, "--fix")
    assert (code, findings) == (0, [])
    assert "ExecStart=/usr/bin/python3 -m sparkctl_node.rollback" in ring.sh("spark2", "cat", unit).stdout


def test_a_link_down(ring: Lab) -> None:
    ring.cli("fault", "spark1:enp1s0f0np0", "--down")
    try:
        code, findings = _doctor(ring)
        other, _ = _peer(ring, "spark1", "p0")
        assert code == 1
        assert sorted(_seen(findings)) == sorted([("spark1", "enp1s0f0np0 admin state", "down"),
                                                  (other, "enp1s0f1np1 carrier", "none")])
    finally:
        ring.cli("fault", "spark1:enp1s0f0np0", "--clear")
    code, findings = _doctor(ring)  # frames the link dropped while down are named, on that link alone
    assert {(f["node"], f["check"]) for f in findings} <= {("spark1", "enp1s0f0np0 error counters"),
                                                           (other, "enp1s0f1np1 error counters")}, findings


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
        # Docker's own layout: FORWARD jumps to DOCKER-USER, where the fabric's ACCEPT rules belong
        ring.sh("spark3", "iptables", "-N", "DOCKER-USER")
        ring.sh("spark3", "iptables", "-I", "FORWARD", "-j", "DOCKER-USER")
        first, *rest = hardware.ALL_NETDEVS
        ring.sh("spark3", "iptables", "-A", "DOCKER-USER", "-i", first, "-j", "ACCEPT")
        code, findings = _doctor(ring)
        assert code == 1 and _seen(findings) == [("spark3", "iptables FORWARD policy", f"DROP, ACCEPT only from {first}")]
        assert all(f"-i {device} -j ACCEPT" in findings[0]["fix"] for device in rest)
        for device in rest:
            ring.sh("spark3", "iptables", "-A", "DOCKER-USER", "-i", device, "-j", "ACCEPT")
        assert _doctor(ring) == (0, [])
    finally:
        ring.sh("spark3", "iptables", "-P", "FORWARD", "ACCEPT")
        ring.sh("spark3", "iptables", "-D", "FORWARD", "-j", "DOCKER-USER", check=False)
        ring.sh("spark3", "iptables", "-F", "DOCKER-USER", check=False)
        ring.sh("spark3", "iptables", "-X", "DOCKER-USER", check=False)
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
    samples = {(m.name, tuple(sorted(m.labels.items()))): m.value
               for family in text_string_to_metric_families(metrics) for m in family.samples}
    assert samples[("sparkctl_fabric_drift", ())] == 1
    assert samples[("sparkctl_link_mtu", (("interface", "enp1s0f1np1"),))] == 1500
    assert samples[("sparkctl_link_errors_total", (("counter", "tx_dropped"), ("interface", "enp1s0f1np1")))] >= 0
    assert not any(name.startswith("sparkctl_link_pcie") for name, _ in samples)  # veths: no PCIe figures
    healed = _watch(ring, "spark3", "--heal")
    assert healed["findings"] == [] and healed["history"][-1]["event"] == "healed"
    assert ring.sh("spark3", "cat", "/sys/class/net/enp1s0f1np1/mtu").stdout.strip() == "9000"
    result = subprocess.run([SPARKCTL, "doctor", "--inventory", str(ring.inventory), "--json"],
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [(e["event"], e["text"]) for e in json.loads(result.stdout)["watch"]["spark3"]]
    assert events[-2:] == [("drift", drift), ("healed", drift)]
