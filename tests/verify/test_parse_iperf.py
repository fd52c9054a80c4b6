"""iperf3 -J output captured from iperf3 3.12 between two network namespaces."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkctl.verify.parse_iperf import parse_iperf3_json
from sparkctl.verify.parsing import ParseError

Read = Callable[[str], str]


def test_tcp_four_streams(captured: Read) -> None:
    result = parse_iperf3_json(captured("iperf3-tcp-P4.json"))
    assert result.ok
    assert result.protocol == "TCP"
    assert result.streams == 4
    assert result.reverse is False
    assert result.received_gbps == pytest.approx(13.8154, abs=1e-4)
    assert result.sent_gbps == pytest.approx(13.8165, abs=1e-4)
    assert result.bytes_sent == 3457417216
    assert result.retransmits == 0
    assert result.lost_percent is None


def test_reverse_run_counts_server_retransmits(captured: Read) -> None:
    result = parse_iperf3_json(captured("iperf3-tcp-reverse-P2.json"))
    assert result.reverse is True
    assert result.received_gbps == pytest.approx(20.3677, abs=1e-4)
    assert result.retransmits == 28


def test_udp_reports_loss_not_retransmits(captured: Read) -> None:
    result = parse_iperf3_json(captured("iperf3-udp.json"))
    assert result.protocol == "UDP"
    assert result.received_gbps == pytest.approx(1.6560, abs=1e-4)
    assert result.lost_percent == pytest.approx(17.167, abs=1e-3)
    assert result.retransmits is None


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("iperf3-refused.json", "unable to connect to server: Connection refused"),
        ("iperf3-connect-timeout.json", "unable to connect to server: Connection timed out"),
    ],
)
def test_error_key_with_exit_code_zero(captured: Read, name: str, error: str) -> None:
    result = parse_iperf3_json(captured(name), exit_code=0)
    assert result.error == error
    assert result.received_gbps is None
    assert not result.ok


def test_server_killed_mid_test_keeps_partial_numbers_but_fails(captured: Read) -> None:
    result = parse_iperf3_json(captured("iperf3-server-killed.json"))
    assert result.error == "the server has terminated"
    assert result.received_gbps == 0.0
    assert result.sent_gbps == pytest.approx(18.2435, abs=1e-4)
    assert not result.ok


def test_nonzero_exit_without_error_key_is_an_error(captured: Read) -> None:
    result = parse_iperf3_json(captured("iperf3-tcp-P4.json"), exit_code=1)
    assert result.error == "iperf3 exited with code 1"
    assert not result.ok


def test_plain_text_usage_output_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not JSON") as info:
        parse_iperf3_json("iperf3: option requires an argument -- 'c'\nUsage: iperf3 [-s|-c host] [options]\n")
    assert info.value.exit_code == 2
    assert "option requires an argument" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unfinished_run_without_error_is_a_parse_error(captured: Read) -> None:
    text = captured("iperf3-refused.json").replace('"error":', '"note":')
    with pytest.raises(ParseError, match="did not finish"):
        parse_iperf3_json(text)
