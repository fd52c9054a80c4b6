"""/sys/class/net/IF values read with `cat FILE 2>&1` on a veth: up, peer down, admin down."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkctl.verify.parse_sysfs import parse_carrier, parse_mtu, parse_speed
from sparkctl.verify.parsing import ParseError

Read = Callable[[str], str]


def test_up(captured: Read) -> None:
    assert parse_carrier(captured("sysfs-veth-up/carrier")) is True
    assert parse_mtu(captured("sysfs-veth-up/mtu")) == 9000
    assert parse_speed(captured("sysfs-veth-up/speed")) == 10000


def test_peer_down_keeps_speed_loses_carrier(captured: Read) -> None:
    assert parse_carrier(captured("sysfs-veth-peer-down/carrier")) is False
    assert parse_speed(captured("sysfs-veth-peer-down/speed")) == 10000


def test_admin_down_answers_einval(captured: Read) -> None:
    assert "Invalid argument" in captured("sysfs-veth-admin-down/carrier")
    assert parse_carrier(captured("sysfs-veth-admin-down/carrier")) is None
    assert parse_speed(captured("sysfs-veth-admin-down/speed")) is None
    assert parse_mtu(captured("sysfs-veth-admin-down/mtu")) == 9000


def test_unknown_speed() -> None:
    assert parse_speed("-1\n") is None


@pytest.mark.parametrize(
    ("parser", "text"),
    [(parse_carrier, "cat: /sys/class/net/x/carrier: No such file or directory"), (parse_mtu, "jumbo"),
     (parse_speed, "fast")],
)
def test_garbage(parser: Callable[[str], object], text: str) -> None:
    with pytest.raises(ParseError):
        parser(text)
