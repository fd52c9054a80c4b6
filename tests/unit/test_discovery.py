"""Merging what every Spark's probes heard into cables, and judging them against pinned cabling."""

from __future__ import annotations

from typing import Any

import pytest

from sparkctl.discovery import (
    CablingContradicted,
    as_discovered,
    contradictions,
    discovered_cables,
    probe_errors,
    storage_cage_moved,
)
from sparkctl.model import Cable, Endpoint


def report(iface: str, *heard: tuple[str, str]) -> dict[str, Any]:
    return {"iface": iface, "heard": [{"node": n, "iface": i} for n, i in heard], "error": None}


def cable(a: str, b: str) -> Cable:
    (an, ap), (bn, bp) = a.split(":"), b.split(":")
    return Cable.between(Endpoint(an, ap), Endpoint(bn, bp))


# spark1:p0 <-> spark2:p0 on both halves, as both ends report it
DIRECT = {
    "spark1": [report("enp1s0f0np0", ("spark2", "enp1s0f0np0")), report("enP2p1s0f0np0", ("spark2", "enP2p1s0f0np0")),
               report("enp1s0f1np1")],
    "spark2": [report("enp1s0f0np0", ("spark1", "enp1s0f0np0")), report("enP2p1s0f0np0", ("spark1", "enP2p1s0f0np0"))],
}


def test_both_halves_and_both_ends_make_one_cable() -> None:
    found = discovered_cables(DIRECT)
    assert found == [cable("spark1:p0", "spark2:p0")]
    assert as_discovered(found) == ["spark1:p0 spark2:p0"]


def test_a_cage_that_hears_two_sparks_is_a_switch() -> None:
    reports = {"spark1": [report("enp1s0f0np0", ("spark2", "enp1s0f0np0"), ("spark3", "enp1s0f0np0"))]}
    with pytest.raises(CablingContradicted, match="spark1:p0 hears spark2:p0 and spark3:p0") as raised:
        discovered_cables(reports)
    assert raised.value.fix == "if the ports go to a switch, set sparkctl_topology: switch"


def test_pins_the_wires_contradict_are_named_both_ways() -> None:
    found = discovered_cables(DIRECT)
    pinned = [cable("spark1:p0", "spark2:p1"), cable("spark1:p1", "spark2:p0")]
    assert contradictions(found, pinned, ["spark1", "spark2"]) == [
        ("found a cable spark1:p0 <-> spark2:p0, but sparkctl_cabling pins spark1:p0 <-> spark2:p1 and "
        "spark1:p1 <-> spark2:p0"),
        ("sparkctl_cabling pins spark1:p0 <-> spark2:p1, but no probe frame crossed it (unplugged, wrong port, "
        "or link down)"),
        ("sparkctl_cabling pins spark1:p1 <-> spark2:p0, but no probe frame crossed it (unplugged, wrong port, "
        "or link down)"),
    ]
    assert contradictions(found, [cable("spark1:p0", "spark2:p0")], ["spark1", "spark2"]) == []
    # a pin between nodes left out of the run (--limit) is not judged
    assert contradictions([], [cable("spark3:p0", "spark4:p1")], ["spark1", "spark2"]) == []


def test_a_probe_that_could_not_run_is_named_with_its_node() -> None:
    failed = {"spark2": [{"iface": "enp1s0f0np0", "heard": [], "error": "enp1s0f0np0: Operation not permitted"}]}
    assert probe_errors(failed) == ["peer_probe failed on spark2: enp1s0f0np0: Operation not permitted"]
    assert probe_errors(DIRECT) == []


def answering(iface: str, *heard: tuple[str, str]) -> dict[str, Any]:
    """A report of a netdev on which a storage server answered the ARP probe."""
    return {**report(iface, *heard), "answered": ["198.19.200.250"]}


# A storage split whose storage switch joins both Sparks' storage cages: frames alone make it look like a
# second cable. Here the cables were swapped: the peer cable is on p1, the storage switch on p0.
SWAPPED = {
    "spark1": [answering("enp1s0f0np0", ("spark2", "enp1s0f0np0")), report("enp1s0f1np1", ("spark2", "enp1s0f1np1"))],
    "spark2": [answering("enp1s0f0np0", ("spark1", "enp1s0f0np0")), report("enp1s0f1np1", ("spark1", "enp1s0f1np1"))],
}


def test_what_the_storage_cage_hears_is_not_a_cable() -> None:
    assert discovered_cables(SWAPPED, storage_port="p0") == [cable("spark1:p1", "spark2:p1")]
    assert discovered_cables(SWAPPED, storage_port="p1") == [cable("spark1:p0", "spark2:p0")]


def test_storage_servers_answering_on_the_peer_cage_name_the_swap() -> None:
    assert storage_cage_moved(SWAPPED, "p1") == [
        "spark1's storage servers answer on p0, not on p1", "spark2's storage servers answer on p0, not on p1"]
    assert storage_cage_moved(SWAPPED, "p0") == []
    # No storage server answered anywhere (down, or none listed): nothing to judge, the checks after the
    # apply name the unreachable targets.
    assert storage_cage_moved(DIRECT, "p1") == []
