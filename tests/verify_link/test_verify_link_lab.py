"""verify-link on a provisioned lab: a healthy fabric passes, and each injected fault fails the right
check on the right link with no false alarm elsewhere. Needs root and namespaces (`make test`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkctl.hardware import port_of
from tests.labkit import REPO, SPARKCTL, Lab, running_lab

pytestmark = pytest.mark.lab


def sparkctl(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as a user runs it (Ctrl-C and exit codes are real)."""
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([SPARKCTL, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def lab(lab_root: Path) -> Iterator[Lab]:
    """Two Sparks joined by two cables (four halves), provisioned with sparkctl."""
    with running_lab(lab_root, nodes=2, topology="direct", prefix="v") as lab:
        lab.cli("cable", "spark1:p1", "spark2:p1")
        ok(sparkctl("provision", "--inventory", str(lab.inventory)))
        yield lab


def verify(lab: Lab) -> tuple[int, dict[str, Any]]:
    result = sparkctl("verify-link", "--inventory", str(lab.inventory), "--json", "--duration", "2", timeout=300)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return result.returncode, json.loads(result.stdout)


def failures(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["link"], p["check"]) for p in report["problems"]}


def test_healthy_lab_passes(lab: Lab) -> None:
    code, report = verify(lab)
    assert code == 0 and report["ok"] is True, report["problems"]
    links = {link["name"]: {c["check"]: c["ok"] for c in link["checks"]} for link in report["links"]}
    halves = [name for name in links if "np" in name]  # netdev names; cables read spark1:p0-spark2:p0
    assert len(halves) == 4
    for name in halves:
        for check in ("carrier", "speed", "peer", "mtu", "loss", "bandwidth"):
            assert links[name][check] is True, (name, check)
        assert links[name]["rdma"] is None  # no RDMA here: skipped, never passed
    assert links["spark1:p0-spark2:p0"]["bandwidth"] is True  # the cable's aggregate


@pytest.mark.parametrize(("args", "iface", "check"), [
    (("--down",), "spark1:enP2p1s0f0np0", "carrier"),
    (("--mtu", "1500"), "spark2:enp1s0f0np0", "mtu"),
    (("--rate", "1gbit"), "spark1:enP2p1s0f1np1", "bandwidth"),
    (("--loss", "1%"), "spark2:enp1s0f1np1", "loss"),
], ids=["link-down", "mtu-1500", "rate-limit", "loss"])
def test_fault_fails_the_right_check_on_the_right_link(lab: Lab, args: tuple[str, ...],
                                                       iface: str, check: str) -> None:
    name = iface.split(":")[1]
    port, _ = port_of(name)
    link = f"spark1:{name}-spark2:{name}"  # each cable here joins the same port on both Sparks
    cable = f"spark1:{port}-spark2:{port}"
    lab.cli("fault", iface, *args)
    try:
        code, report = verify(lab)
    finally:
        lab.cli("fault", iface, "--clear")
    assert code == 1 and report["ok"] is False
    found = failures(report)
    assert (link, check) in found, found
    assert {failed for failed, _ in found} <= {link, cable}, found  # no false alarm on other links
    for problem in report["problems"]:
        assert problem["message"]  # every failure names what to do


def test_swapped_cables_fail_the_peer_check(lab: Lab) -> None:
    lab.cli("uncable", "spark1:p0")
    lab.cli("uncable", "spark1:p1")
    lab.cli("cable", "spark1:p0", "spark2:p1")
    lab.cli("cable", "spark1:p1", "spark2:p0")
    try:
        code, report = verify(lab)
    finally:
        for port in ("p0", "p1"):
            lab.cli("uncable", f"spark1:{port}")
        for port in ("p0", "p1"):
            lab.cli("cable", f"spark1:{port}", f"spark2:{port}")
    assert code == 1
    peer_failures = {link for link, check in failures(report) if check == "peer"}
    assert len(peer_failures) == 4, failures(report)
    assert all("cabled to" in p["message"] for p in report["problems"] if p["check"] == "peer")
    _, healthy = verify(lab)
    assert healthy["ok"] is True, healthy["problems"]


def test_interrupted_run_leaves_no_iperf3_server(lab: Lab) -> None:
    """Ctrl-C in the middle of the bandwidth step: verify-link stops, and no iperf3 is left on a node."""
    process = subprocess.Popen([SPARKCTL, "verify-link", "--inventory", str(lab.inventory),
                                "--duration", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, cwd=REPO)
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    while "bandwidth" not in seen and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen += line
    assert "bandwidth" in seen, seen
    time.sleep(2)  # servers and clients are running now
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    time.sleep(1)
    for node in ("spark1", "spark2"):
        left = lab.sh(node, "pgrep", "-x", "iperf3", check=False)
        assert left.returncode == 1 and not left.stdout.strip(), f"iperf3 still runs on {node}: {left.stdout}"

