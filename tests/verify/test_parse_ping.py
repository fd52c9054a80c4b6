"""iputils ping 20221126 output captured between network namespaces (veth, MTU 9000 and 1500)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkctl.verify.parse_ping import parse_ping, parse_ping_responders
from sparkctl.verify.parsing import ParseError

Read = Callable[[str], str]


def test_clean_run(captured: Read) -> None:
    result = parse_ping(captured("ping-ok.txt"))
    assert (result.transmitted, result.received, result.loss_percent) == (4, 4, 0.0)
    assert result.rtt_avg_ms == pytest.approx(0.062)
    assert not result.mtu_problem
    assert result.error is None


def test_jumbo_probe_passes_at_mtu_9000(captured: Read) -> None:
    result = parse_ping(captured("ping-jumbo-ok.txt"))
    assert (result.transmitted, result.received) == (3, 3)
    assert not result.mtu_problem


def test_local_side_at_1500_refuses_jumbo(captured: Read) -> None:
    result = parse_ping(captured("ping-jumbo-local-mtu1500.txt"))
    assert result.mtu_problem
    assert result.reported_mtu == 1500
    assert result.errors == 3
    assert result.mtu_errors[0] == "ping: local error: message too long, mtu=1500"


def test_peer_at_1500_shows_as_no_buffer_space(captured: Read) -> None:
    result = parse_ping(captured("ping-jumbo-peer-mtu1500.txt"))
    assert result.mtu_problem
    assert result.reported_mtu is None
    assert result.loss_percent == 100.0
    assert len(result.mtu_errors) == 3


def test_router_frag_needed(captured: Read) -> None:
    result = parse_ping(captured("ping-jumbo-frag-needed.txt"))
    assert result.mtu_problem
    assert result.reported_mtu == 1500
    assert result.mtu_errors[0].startswith("From 198.19.250.66 icmp_seq=1 Frag needed and DF set")


def test_partial_loss(captured: Read) -> None:
    result = parse_ping(captured("ping-partial-loss-quiet.txt"))
    assert (result.transmitted, result.received, result.loss_percent) == (20, 13, 35.0)
    assert not result.mtu_problem


def test_host_unreachable(captured: Read) -> None:
    result = parse_ping(captured("ping-host-unreachable.txt"))
    assert result.unreachable
    assert (result.received, result.errors) == (0, 3)


def test_silent_total_loss_is_not_unreachable(captured: Read) -> None:
    result = parse_ping(captured("ping-unreachable.txt"))
    assert result.loss_percent == 100.0
    assert not result.unreachable


def test_no_route_is_an_error_not_a_parse_failure(captured: Read) -> None:
    result = parse_ping(captured("ping-network-unreachable.txt"))
    assert result.error == "connect: Network is unreachable"
    assert result.transmitted == 0


def test_all_nodes_multicast_responders(captured: Read) -> None:
    text = captured("ping6-all-nodes.txt")
    assert parse_ping_responders(text) == [
        ("fe80::8ca:bfff:fe85:dbbb", "sparkvc0"),
        ("fe80::4c55:6bff:fe6e:dd13", "sparkvc0"),
    ]
    assert parse_ping(text).duplicates == 1


def test_ipv4_responder_has_no_interface(captured: Read) -> None:
    assert parse_ping_responders(captured("ping-ok.txt")) == [("198.19.250.2", None)]


def test_unrelated_text_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="packets transmitted"):
        parse_ping("bash: ping: command not found\n")
