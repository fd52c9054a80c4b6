"""Read single values from /sys/class/net/IF (carrier, mtu, speed).

The text is what `cat /sys/class/net/IF/FILE 2>&1` prints on the node. The kernel answers EINVAL
("Invalid argument") for `carrier` and `speed` while the interface is administratively down, and
speed reads -1 when it is unknown; both become None so a verdict can say "down" instead of
reporting a nonsense number.
"""

from __future__ import annotations

from sparkctl.verify.parsing import ParseError

_EINVAL = "Invalid argument"


def parse_carrier(text: str) -> bool | None:
    """`carrier`: True/False, None when the interface is down (EINVAL)."""
    value = text.strip()
    if value in ("0", "1"):
        return value == "1"
    if _EINVAL in value:
        return None
    raise ParseError("/sys/class/net/IF/carrier", "expected 0 or 1", text)


def parse_mtu(text: str) -> int:
    """`mtu`: always readable while the interface exists."""
    value = text.strip()
    if not value.isdigit():
        raise ParseError("/sys/class/net/IF/mtu", "expected a number", text)
    return int(value)


def parse_speed(text: str) -> int | None:
    """`speed` in Mb/s; None when down (EINVAL) or unknown (-1)."""
    value = text.strip()
    if _EINVAL in value or value == "-1":
        return None
    if not value.isdigit():
        raise ParseError("/sys/class/net/IF/speed", "expected a number of Mb/s", text)
    return int(value)

