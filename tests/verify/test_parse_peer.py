"""peer_probe.py reports captured from runs between network namespaces (direct veth, a bridge)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkctl.verify.parse_peer import parse_peer_probe
from sparkctl.verify.parsing import ParseError

Read = Callable[[str], str]


def test_direct_cable(captured: Read) -> None:
    report = parse_peer_probe(captured("peer-probe-direct-spark1.json"))
    assert report.announce == "spark1:enp1s0f0np0"
    assert report.error is None
    assert report.sent == 6
    assert [str(identity) for identity in report.heard] == ["spark2:enp1s0f1np1"]
    assert report.heard[0].mac == "4e:55:6b:6e:dd:13"
    assert report.heard[0].frames == 6
    assert report.own_node == ()


def test_twin_heard_through_switch_is_kept_apart(captured: Read) -> None:
    report = parse_peer_probe(captured("peer-probe-switch-spark1-half0.json"))
    assert [str(identity) for identity in report.heard] == ["spark2:enp1s0f0np0"]
    assert [str(identity) for identity in report.own_node] == ["spark1:enP2p1s0f0np0"]


def test_nobody_heard(captured: Read) -> None:
    report = parse_peer_probe(captured("peer-probe-nobody.json"))
    assert report.heard == ()
    assert report.sent == 3


def test_interface_down(captured: Read) -> None:
    report = parse_peer_probe(captured("peer-probe-iface-down.json"))
    assert report.error is not None and "--bring-up" in report.error


@pytest.mark.parametrize("text", ["", "Traceback (most recent call last):\n", '{"probe": "other"}', '{"probe": "sparkctl-peer-probe"}'])
def test_not_a_report(text: str) -> None:
    with pytest.raises(ParseError):
        parse_peer_probe(text)
