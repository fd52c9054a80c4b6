"""ethtool 6.1 output captured on veth, and public `ethtool -m` captures of QSFP cables.

ethtool-m-spark-amphenol-qsfp28-pam4.txt is the EEPROM of NVIDIA's approved Spark cable as a Spark
owner published it; the other module samples come from public bug reports and ethtool patches.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkctl.verify.parse_ethtool import parse_ethtool, parse_ethtool_module
from sparkctl.verify.parsing import ParseError

Read = Callable[[str], str]


def test_link_up(captured: Read) -> None:
    settings = parse_ethtool(captured("ethtool-veth-up.txt"))
    assert settings.interface == "sparkvc0"
    assert settings.speed_mbps == 10000
    assert settings.duplex == "Full"
    assert settings.link_detected is True


@pytest.mark.parametrize("name", ["ethtool-veth-peer-down.txt", "ethtool-veth-admin-down.txt"])
def test_link_down(captured: Read, name: str) -> None:
    assert parse_ethtool(captured(name)).link_detected is False


def test_unknown_speed_becomes_none(captured: Read) -> None:
    text = captured("ethtool-veth-peer-down.txt").replace("Speed: 10000Mb/s", "Speed: Unknown!")
    assert parse_ethtool(text).speed_mbps is None


def test_200g_speed(captured: Read) -> None:
    text = captured("ethtool-veth-up.txt").replace("Speed: 10000Mb/s", "Speed: 200000Mb/s")
    assert parse_ethtool(text).speed_mbps == 200000


def test_missing_interface_is_a_parse_error(captured: Read) -> None:
    with pytest.raises(ParseError, match="Settings for") as info:
        parse_ethtool(captured("ethtool-no-such-device.txt"))
    assert "no device matches name" in str(info.value)


def test_spark_approved_cable_reads_as_qsfp28(captured: Read) -> None:
    module = parse_ethtool_module(captured("ethtool-m-spark-amphenol-qsfp28-pam4.txt"))
    assert module is not None
    assert module.identifier == 0x11
    assert module.form_factor == "QSFP28"
    assert module.transceiver_types == ("40G Ethernet: 40G Base-CR4",)
    assert module.encoding == "0x08 (PAM4)"
    assert (module.vendor_name, module.vendor_pn) == ("Amphenol", "NJAAKK-N911")


def test_qsfp28_dac_with_two_transceiver_lines(captured: Read) -> None:
    module = parse_ethtool_module(captured("ethtool-m-qsfp28-dac-1m.txt"))
    assert module is not None
    assert module.identifier_text == "QSFP28"
    assert module.transceiver_types == ("40G Ethernet: 40G Base-CR4", "25G Ethernet: 25G Base-CR CA-N")


def test_qsfp28_identifier_only(captured: Read) -> None:
    module = parse_ethtool_module(captured("ethtool-m-qsfp28-swp53-power.txt"))
    assert module is not None
    assert module.form_factor == "QSFP28"
    assert module.vendor_name is None


def test_qsfp_dd(captured: Read) -> None:
    module = parse_ethtool_module(captured("ethtool-m-qsfp-dd-cmis.txt"))
    assert module is not None
    assert module.identifier == 0x18
    assert module.form_factor == "QSFP-DD"
    assert module.identifier_text == "QSFP-DD Double Density 8X Pluggable Transceiver (INF-8628)"


def test_driver_without_module_eeprom_is_none(captured: Read) -> None:
    assert parse_ethtool_module(captured("ethtool-m-veth-unsupported.txt")) is None


def test_missing_interface_is_not_mistaken_for_no_eeprom(captured: Read) -> None:
    with pytest.raises(ParseError, match="no such interface"):
        parse_ethtool_module(captured("ethtool-no-such-device.txt"))


def test_link_settings_are_not_module_output(captured: Read) -> None:
    with pytest.raises(ParseError, match="Identifier"):
        parse_ethtool_module(captured("ethtool-veth-up.txt"))


def test_unknown_identifier_code_keeps_its_number() -> None:
    module = parse_ethtool_module("\tIdentifier                                : 0x1a (SFP-DD)\n")
    assert module is not None
    assert module.form_factor == "0x1a"
