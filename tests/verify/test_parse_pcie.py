"""lspci -vv samples (public captures) and the sysfs link files as the kernel formats them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkctl.verify.parse_pcie import parse_lspci_link, parse_pcie_sysfs
from sparkctl.verify.parsing import ParseError

Read = Callable[[str], str]


def test_width_x2_downgraded_against_lnkcap_x4(captured: Read) -> None:
    link = parse_lspci_link(captured("lspci-vv-nvme-width-x2-downgraded.txt"))
    assert (link.speed_gts, link.width, link.max_speed_gts, link.max_width) == (8.0, 2, 8.0, 4)
    assert link.width_downgraded
    assert not link.speed_downgraded


def test_new_lspci_without_ok_suffix(captured: Read) -> None:
    link = parse_lspci_link(captured("lspci-vv-gen5-x16-no-ok-suffix.txt"))
    assert (link.speed_gts, link.width, link.max_width) == (32.0, 16, 16)
    assert not link.width_downgraded


def test_spark_cx7_lnksta_alone(captured: Read) -> None:
    link = parse_lspci_link(captured("lspci-vv-spark-cx7-lnksta.txt"))
    assert (link.speed_gts, link.width) == (32.0, 4)
    assert link.max_width is None
    assert not link.width_downgraded


def test_marker_alone_flags_downgrade() -> None:
    link = parse_lspci_link("LnkSta: Speed 5GT/s (downgraded), Width x2 (downgraded)\n")
    assert link.width_downgraded and link.speed_downgraded
    assert link.max_width is None


def test_lnksta2_is_not_lnksta() -> None:
    with pytest.raises(ParseError, match="LnkSta"):
        parse_lspci_link("LnkSta2: Current De-emphasis Level: -6dB, EqualizationComplete+\n")


def test_sysfs_gen5_x4() -> None:
    link = parse_pcie_sysfs("32.0 GT/s PCIe\n", "4\n", "32.0 GT/s PCIe\n", "4\n")
    assert (link.speed_gts, link.width, link.max_speed_gts, link.max_width) == (32.0, 4, 32.0, 4)
    assert not link.width_downgraded


def test_sysfs_x2_and_old_kernel_format() -> None:
    link = parse_pcie_sysfs("32 GT/s\n", "2\n", "32 GT/s\n", "4\n")
    assert link.width == 2
    assert link.width_downgraded


def test_sysfs_unknown_speed() -> None:
    link = parse_pcie_sysfs("Unknown\n", "0\n", "32.0 GT/s PCIe\n", "4\n")
    assert link.speed_gts is None
    assert link.speed_downgraded


def test_sysfs_garbage() -> None:
    with pytest.raises(ParseError, match="GT/s"):
        parse_pcie_sysfs("fast", "4", "32.0 GT/s PCIe", "4")
