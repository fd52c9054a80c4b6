"""Read `ethtool IF` (link settings) and `ethtool -m IF` (the cable's EEPROM, SFF-8636 or CMIS).

Only the fields a verdict uses are kept. The module's form factor is read from the SFF-8024
identifier byte, not from the "Transceiver type" compliance lines: NVIDIA's own approved Spark
cable (Amphenol NJAAKK-N911) reports `0x11 (QSFP28)` and "40G Base-CR4" yet runs 200G, so
compliance codes are recorded for the report but must not decide anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparkctl.verify.parsing import ParseError

FORM_FACTORS: dict[int, str] = {
    0x03: "SFP",
    0x0C: "QSFP",
    0x0D: "QSFP+",
    0x11: "QSFP28",
    0x18: "QSFP-DD",
    0x19: "OSFP",
    0x1E: "QSFP-CMIS",
}
"""SFF-8024 identifiers a Spark user may plug in. SFF-8024 has no separate QSFP56 code: a QSFP56
module reports 0x11 (SFF-8636) or 0x1E (CMIS, as QSFP112 cables do)."""

_UNSUPPORTED = ("Operation not supported", "No data available", "Input/output error")
_FIELD = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class LinkSettings:
    """What `ethtool IF` says about the negotiated link."""

    interface: str
    speed_mbps: int | None
    """None when ethtool prints `Unknown!` (no link, or the driver does not know)."""
    duplex: str | None
    link_detected: bool | None


@dataclass(frozen=True)
class ModuleInfo:
    """The identity of the cable or transceiver in a cage, from its EEPROM."""

    identifier: int
    identifier_text: str
    transceiver_types: tuple[str, ...]
    encoding: str | None
    vendor_name: str | None
    vendor_pn: str | None

    @property
    def form_factor(self) -> str:
        """A short name for the identifier (`QSFP28`, `QSFP-DD`, ...), or `0xNN` when not known here."""
        return FORM_FACTORS.get(self.identifier, f"0x{self.identifier:02x}")


def parse_ethtool(text: str) -> LinkSettings:
    """Parse `ethtool IF`; a missing interface (netlink error) raises ParseError naming the error."""
    header = re.search(r"^Settings for (\S+):\s*$", text, re.MULTILINE)
    if header is None:
        raise ParseError("ethtool", "no `Settings for IF:` line", text)
    fields = _fields(text[header.end():])
    speed = fields.get("Speed")
    if speed is None:
        raise ParseError("ethtool", "no `Speed:` line", text)
    match = re.fullmatch(r"(\d+)Mb/s", speed)
    if match is None and not speed.startswith("Unknown"):
        raise ParseError("ethtool", f"unreadable speed {speed!r}", text)
    detected = fields.get("Link detected")
    return LinkSettings(
        interface=header.group(1),
        speed_mbps=int(match.group(1)) if match else None,
        duplex=fields.get("Duplex"),
        link_detected=None if detected is None else detected == "yes",
    )


def parse_ethtool_module(text: str) -> ModuleInfo | None:
    """Parse `ethtool -m IF`; None when the driver or module offers no EEPROM to read."""
    identifier = None
    identifier_text = ""
    types: list[str] = []
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match is None:
            continue
        key, value = match.groups()
        if key == "Identifier":
            parsed = re.fullmatch(r"0x([0-9a-fA-F]{2})(?:\s+\((.*)\))?", value)
            if parsed is None:
                raise ParseError("ethtool -m", f"unreadable identifier {value!r}", text)
            identifier = int(parsed.group(1), 16)
            identifier_text = parsed.group(2) or ""
        elif key == "Transceiver type":
            types.append(value)
        else:
            fields.setdefault(key, value)
    if identifier is None:
        if "No such device" in text:
            raise ParseError("ethtool -m", "no such interface", text)
        if any(reason in text for reason in _UNSUPPORTED):
            return None
        raise ParseError("ethtool -m", "no `Identifier` line", text)
    return ModuleInfo(
        identifier=identifier,
        identifier_text=identifier_text,
        transceiver_types=tuple(types),
        encoding=fields.get("Encoding"),
        vendor_name=fields.get("Vendor name"),
        vendor_pn=fields.get("Vendor PN"),
    )


def _fields(text: str) -> dict[str, str]:
    """`Key: value` lines; the first occurrence of a key wins."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found
