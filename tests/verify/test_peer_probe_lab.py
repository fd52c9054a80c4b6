"""peer_probe.py for real: two or three network namespaces, frames on veth pairs and a bridge.

The probe is copied out of the package and run with the system /usr/bin/python3, the way it runs on
a Spark, so the test also proves it needs nothing but the standard library. Namespaces get names
unique to this run and are deleted by exact name, whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkctl.node import peer_probe
from sparkctl.verify.parse_peer import parse_peer_probe

pytestmark = pytest.mark.lab

SYSTEM_PYTHON = "/usr/bin/python3"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def netns() -> Iterator[list[str]]:
    """A list the test appends namespace names to; each is created here and deleted afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None or not Path(SYSTEM_PYTHON).exists():
        pytest.skip("needs root, iproute2 and /usr/bin/python3")
    created: list[str] = []
    try:
        yield created
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def _add(netns: list[str], role: str) -> str:
    name = f"sparkverifytest-{os.getpid()}-{role}"
    _ip("netns", "add", name)
    netns.append(name)
    return name


@pytest.fixture
def probe_copy(tmp_path: Path) -> Path:
    target = tmp_path / "peer_probe.py"
    shutil.copy(peer_probe.__file__, target)
    return target


def _json_of_all(commands: list[list[str]]) -> list[dict[str, Any]]:
    """Start every command at once (their probes' windows must overlap); the JSON each prints, in order."""
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in commands]
    printed = []
    for process in processes:
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err + out
        printed.append(json.loads(out))
    return printed


def _run_all(probe: Path, runs: list[tuple[str, str, str]], *extra: str) -> list[dict[str, Any]]:
    """Start every (namespace, interface, identity) probe at once; return their reports in order."""
    return _json_of_all([["ip", "netns", "exec", ns, SYSTEM_PYTHON, str(probe), "--iface", iface, "--announce", who,
                          "--listen", "2", *extra] for ns, iface, who in runs])


def _flags(ns: str, iface: str) -> list[str]:
    out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", "dev", iface], check=True,
                         capture_output=True, text=True).stdout
    return list(json.loads(out)[0]["flags"])


def test_direct_cable_both_ends_learn_each_other_from_down_interfaces(netns: list[str], probe_copy: Path) -> None:
    spark1, spark2 = _add(netns, "s1"), _add(netns, "s2")
    # A "cable" from spark1 port 0 to spark2 port 1, both ends still down and without any address.
    _ip("link", "add", "enp1s0f0np0", "netns", spark1, "type", "veth", "peer", "name", "enp1s0f1np1",
        "netns", spark2)
    # As with netplan's `link-local: []`: no IPv6 link-local address appears when the probe sets them up.
    for ns, iface in ((spark1, "enp1s0f0np0"), (spark2, "enp1s0f1np1")):
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{iface}.disable_ipv6=1"],
                       check=True, capture_output=True)

    one, two = _run_all(probe_copy, [(spark1, "enp1s0f0np0", "spark1:enp1s0f0np0"),
                                     (spark2, "enp1s0f1np1", "spark2:enp1s0f1np1")], "--bring-up")

    assert one["brought_up"] and two["brought_up"]
    assert one["error"] is None and two["error"] is None
    assert [(h["node"], h["iface"]) for h in one["heard"]] == [("spark2", "enp1s0f1np1")]
    assert [(h["node"], h["iface"]) for h in two["heard"]] == [("spark1", "enp1s0f0np0")]
    assert one["heard"][0]["mac"] == two["mac"]
    assert one["heard"][0]["frames"] >= 2
    assert parse_peer_probe(json.dumps(one)).heard[0].node == "spark2"
    # The probe put both interfaces back down.
    assert "UP" not in _flags(spark1, "enp1s0f0np0")
    assert "UP" not in _flags(spark2, "enp1s0f1np1")


def test_switch_with_twins_keeps_own_node_apart(netns: list[str], probe_copy: Path) -> None:
    spark1, spark2, switch = _add(netns, "s1"), _add(netns, "s2"), _add(netns, "sw")
    _ip("-n", switch, "link", "add", "br0", "type", "bridge")
    # Both halves of spark1's port 0 and spark2's port 0 on one switch (a bridge).
    ends = [(spark1, "enp1s0f0np0", "spark1"), (spark1, "enP2p1s0f0np0", "spark1"), (spark2, "enp1s0f0np0", "spark2")]
    for number, (ns, iface, _) in enumerate(ends, start=1):
        _ip("link", "add", iface, "netns", ns, "type", "veth", "peer", "name", f"swp{number}", "netns", switch)
        _ip("-n", switch, "link", "set", f"swp{number}", "master", "br0", "up")
        _ip("-n", ns, "link", "set", iface, "up")
    _ip("-n", switch, "link", "set", "br0", "up")

    half0, half1, other = _run_all(probe_copy, [(ns, iface, f"{node}:{iface}") for ns, iface, node in ends])

    assert [(h["node"], h["iface"]) for h in half0["heard"]] == [("spark2", "enp1s0f0np0")]
    assert [(h["node"], h["iface"]) for h in half0["own_node"]] == [("spark1", "enP2p1s0f0np0")]
    assert [(h["node"], h["iface"]) for h in half1["own_node"]] == [("spark1", "enp1s0f0np0")]
    assert sorted((h["node"], h["iface"]) for h in other["heard"]) == [
        ("spark1", "enP2p1s0f0np0"), ("spark1", "enp1s0f0np0")]
    assert not half0["brought_up"]


def test_down_interface_without_bring_up_reports_the_fix(netns: list[str], probe_copy: Path) -> None:
    spark1 = _add(netns, "s1")
    _ip("link", "add", "enp1s0f0np0", "netns", spark1, "type", "veth", "peer", "name", "peer0", "netns", spark1)
    result = subprocess.run(
        ["ip", "netns", "exec", spark1, SYSTEM_PYTHON, str(probe_copy), "--iface", "enp1s0f0np0",
         "--announce", "spark1:enp1s0f0np0", "--listen", "0.5"],
        check=False, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    report = parse_peer_probe(result.stdout)
    assert report.error == "enp1s0f0np0: Network is down (the interface is down: rerun with --bring-up)"


def test_arp_target_answers_only_where_its_owner_is(netns: list[str], probe_copy: Path) -> None:
    """A storage server owns 10.30.0.100 behind spark1's port 1; port 0 goes to a Spark that does not own it.
    Neither probing end has an address."""
    spark1, spark2, storage = _add(netns, "s1"), _add(netns, "s2"), _add(netns, "st")
    _ip("link", "add", "enp1s0f1np1", "netns", spark1, "type", "veth", "peer", "name", "nas0", "netns", storage)
    _ip("link", "add", "enp1s0f0np0", "netns", spark1, "type", "veth", "peer", "name", "enp1s0f0np0", "netns", spark2)
    _ip("-n", storage, "address", "add", "10.30.0.100/24", "dev", "nas0")
    _ip("-n", storage, "link", "set", "nas0", "up")
    _ip("-n", spark2, "address", "add", "10.30.0.2/24", "dev", "enp1s0f0np0")
    _ip("-n", spark2, "link", "set", "enp1s0f0np0", "up")

    to_storage, to_peer = _run_all(probe_copy, [(spark1, "enp1s0f1np1", "spark1:enp1s0f1np1"),
                                                (spark1, "enp1s0f0np0", "spark1:enp1s0f0np0")],
                                   "--bring-up", "--arp-target", "10.30.0.100", "--arp-target", "10.30.0.101")
    assert to_storage["error"] is None and to_peer["error"] is None
    assert to_storage["answered"] == ["10.30.0.100"]
    assert to_peer["answered"] == []


def _probe_nodes(probe: Path, nodes: list[tuple[str, str, dict[str, str]]], listen: float) -> list[dict[str, Any]]:
    """Run `probe_all` at once in each (namespace, node, {netdev: cage}) with the system Python, as the
    discovery step does on each Spark; per node, its reports and the seconds it took."""
    code = ("import json, sys, time; sys.path.insert(0, sys.argv[1]); import peer_probe; "
            "cages = json.loads(sys.argv[3]); start = time.monotonic(); "
            "reports = peer_probe.probe_all(sys.argv[2], sorted(cages), float(sys.argv[4]), cages=cages); "
            "print(json.dumps({'reports': reports, 'seconds': time.monotonic() - start}))")
    return _json_of_all([["ip", "netns", "exec", ns, SYSTEM_PYTHON, "-c", code, str(probe.parent), node,
                          json.dumps(cages), str(listen)] for ns, node, cages in nodes])


def _cable(a: tuple[str, str], b: tuple[str, str]) -> None:
    _ip("link", "add", a[1], "netns", a[0], "type", "veth", "peer", "name", b[1], "netns", b[0])
    for ns, iface in (a, b):
        _ip("-n", ns, "link", "set", iface, "up")


def test_cabled_nodes_end_their_probes_once_each_cage_met_its_far_end(netns: list[str], probe_copy: Path) -> None:
    """Both halves of spark1's p0 to spark2's p0 (one veth per half), spark1's p1 cabled to nothing: both
    nodes stop after about a second of a 6 s window, with the whole cabling heard."""
    spark1, spark2 = _add(netns, "s1"), _add(netns, "s2")
    _cable((spark1, "enp1s0f0np0"), (spark2, "enp1s0f0np0"))
    _cable((spark1, "enP2p1s0f0np0"), (spark2, "enP2p1s0f0np0"))
    _ip("link", "add", "enp1s0f1np1", "netns", spark1, "type", "veth", "peer", "name", "loose", "netns", spark1)
    _ip("-n", spark1, "link", "set", "enp1s0f1np1", "up")  # no carrier: its far end is down
    halves = {"enp1s0f0np0": "p0", "enP2p1s0f0np0": "p0"}

    one, two = _probe_nodes(probe_copy, [(spark1, "spark1", {**halves, "enp1s0f1np1": "p1"}),
                                         (spark2, "spark2", halves)], listen=6)

    for result, far in ((one, "spark2"), (two, "spark1")):
        assert result["seconds"] < 3.5, result
        assert all(report["settled"] for report in result["reports"]), result
        heard = {(h["node"], h["iface"]) for r in result["reports"] if r["iface"] != "enp1s0f1np1" for h in r["heard"]}
        assert heard == {(far, "enp1s0f0np0"), (far, "enP2p1s0f0np0")}


def test_a_cage_that_hears_two_sparks_keeps_the_whole_window(netns: list[str], probe_copy: Path) -> None:
    """p0 of three Sparks on one bridge: no cage meets exactly one far end, so every probe listens for the
    whole window and the merge sees the crowd."""
    nodes, switch = [_add(netns, f"s{n}") for n in (1, 2, 3)], _add(netns, "sw")
    _ip("-n", switch, "link", "add", "br0", "type", "bridge")
    for number, ns in enumerate(nodes, start=1):
        _ip("link", "add", "enp1s0f0np0", "netns", ns, "type", "veth", "peer", "name", f"swp{number}", "netns", switch)
        _ip("-n", switch, "link", "set", f"swp{number}", "master", "br0", "up")
        _ip("-n", ns, "link", "set", "enp1s0f0np0", "up")
    _ip("-n", switch, "link", "set", "br0", "up")

    results = _probe_nodes(probe_copy, [(ns, f"spark{n}", {"enp1s0f0np0": "p0"}) for n, ns in enumerate(nodes, 1)],
                           listen=2)

    for result in results:
        assert result["seconds"] >= 2, result
        assert not result["reports"][0]["settled"] and len(result["reports"][0]["heard"]) == 2


def test_a_far_end_that_never_answers_keeps_the_whole_window(netns: list[str], probe_copy: Path) -> None:
    """spark1's p0 has carrier but the far end runs no probe (a Spark left out of the run): spark1 cannot
    know it was heard, so it listens for the whole window."""
    spark1, spark2 = _add(netns, "s1"), _add(netns, "s2")
    _cable((spark1, "enp1s0f0np0"), (spark2, "enp1s0f0np0"))

    (result,) = _probe_nodes(probe_copy, [(spark1, "spark1", {"enp1s0f0np0": "p0"})], listen=2)

    assert result["seconds"] >= 2 and not result["reports"][0]["settled"]
    assert result["reports"][0]["heard"] == []
