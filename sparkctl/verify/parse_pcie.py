"""Read the PCIe link of a ConnectX-7 function from `lspci -vv -s ADDR` or from sysfs.

Each half of a Spark's ConnectX-7 should train at Gen5 (32GT/s) x4. A BIOS older than 2026-04
trains the second half at x2, which halves that half's bandwidth with no error anywhere else, so
the negotiated width (LnkSta) is compared with the capability (LnkCap). Older lspci prints
"Width x4 (ok)"/"(downgraded)", newer prints the bare value; both are read, and without a marker
the downgrade is inferred from LnkCap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparkctl.verify.parsing import ParseError

_LNKCAP = re.compile(r"LnkCap:\s*Port #\d+, Speed (unknown|[\d.]+GT/s), Width x(\d+)")
_LNKSTA = re.compile(
    r"LnkSta:\s*Speed (unknown|[\d.]+GT/s)(?: \((ok|downgraded)\))?, Width x(\d+)(?: \((ok|downgraded)\))?"
)
_SYSFS_SPEED = re.compile(r"^([\d.]+) GT/s(?: PCIe)?$")


@dataclass(frozen=True)
class PcieLink:
    """Negotiated and maximum PCIe link of one function. Speeds in GT/s, None when unknown."""

    speed_gts: float | None
    width: int
    max_speed_gts: float | None
    max_width: int | None
    marked_speed_downgraded: bool = False
    marked_width_downgraded: bool = False
    """lspci's own "(downgraded)" markers, kept for output that has LnkSta but no LnkCap."""

    @property
    def width_downgraded(self) -> bool:
        below_cap = self.max_width is not None and self.width < self.max_width
        return below_cap or self.marked_width_downgraded

    @property
    def speed_downgraded(self) -> bool:
        if self.max_speed_gts is None:
            return self.marked_speed_downgraded
        return self.speed_gts is None or self.speed_gts < self.max_speed_gts


def parse_lspci_link(text: str) -> PcieLink:
    """The first Express capability's LnkCap/LnkSta in `lspci -vv` output for one device."""
    status = _LNKSTA.search(text)
    if status is None:
        raise ParseError("lspci -vv", "no `LnkSta: Speed ..., Width x..` line (not a PCIe device?)", text)
    cap = _LNKCAP.search(text)
    max_speed = _gts(cap.group(1)) if cap else None
    max_width = int(cap.group(2)) if cap else None
    return PcieLink(
        speed_gts=_gts(status.group(1)),
        width=int(status.group(3)),
        max_speed_gts=max_speed,
        max_width=max_width,
        marked_speed_downgraded=status.group(2) == "downgraded",
        marked_width_downgraded=status.group(4) == "downgraded",
    )


def parse_pcie_sysfs(current_speed: str, current_width: str, max_speed: str, max_width: str) -> PcieLink:
    """The four files under /sys/bus/pci/devices/ADDR/ (`current_link_speed`, ... `max_link_width`)."""
    return PcieLink(
        speed_gts=_sysfs_speed(current_speed),
        width=_sysfs_width(current_width),
        max_speed_gts=_sysfs_speed(max_speed),
        max_width=_sysfs_width(max_width),
    )


def _gts(value: str) -> float | None:
    return None if value == "unknown" else float(value.removesuffix("GT/s"))


def _sysfs_speed(text: str) -> float | None:
    value = text.strip()
    if value == "Unknown":
        return None
    match = _SYSFS_SPEED.match(value)
    if match is None:
        raise ParseError("/sys/bus/pci/devices/ADDR/*_link_speed", "expected `N.N GT/s PCIe`", text)
    return float(match.group(1))


def _sysfs_width(text: str) -> int:
    value = text.strip()
    if not value.isdigit():
        raise ParseError("/sys/bus/pci/devices/ADDR/*_link_width", "expected a lane count", text)
    return int(value)
