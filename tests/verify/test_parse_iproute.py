"""`ip -j link show` and `ip -6 -j neigh show` captured from iproute2 on Debian 12 in namespaces."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkctl.verify.parse_iproute import parse_ip_link, parse_ip_neigh
from sparkctl.verify.parsing import ParseError

Read = Callable[[str], str]


def test_link_up_with_carrier(captured: Read) -> None:
    links = parse_ip_link(captured("ip-j-link-show.json"))
    assert set(links) == {"lo", "sparkvc0", "sparkvc1"}
    link = links["sparkvc0"]
    assert link.mac == "0a:ca:bf:85:db:bb"
    assert link.mtu == 9000
    assert link.operstate == "UP"
    assert link.admin_up and link.carrier is True


def test_up_without_carrier(captured: Read) -> None:
    link = parse_ip_link(captured("ip-j-link-no-carrier.json"))["sparkvc0"]
    assert link.admin_up
    assert link.carrier is False


def test_admin_down_has_unknown_carrier(captured: Read) -> None:
    link = parse_ip_link(captured("ip-j-link-admin-down.json"))["sparkvc0"]
    assert not link.admin_up
    assert link.carrier is None


def test_neighbour_table(captured: Read) -> None:
    [neighbor] = parse_ip_neigh(captured("ip-6-j-neigh.json"))
    assert neighbor.address == "fe80::4c55:6bff:fe6e:dd13"
    assert neighbor.mac == "4e:55:6b:6e:dd:13"
    assert neighbor.states == ("DELAY",)


def test_failed_neighbour_has_no_mac() -> None:
    [neighbor] = parse_ip_neigh('[{"dst":"fe80::1","state":["FAILED"]}]')
    assert neighbor.mac is None


@pytest.mark.parametrize("text", ["Device \"enp1s0f0np0\" does not exist.", '{"ifname": "x"}', '[{"mtu": 1500}]'])
def test_bad_input(text: str) -> None:
    with pytest.raises(ParseError):
        parse_ip_link(text)
