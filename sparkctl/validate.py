"""One rule per kind of inventory value: host names, interface names, addresses, paths, numbers.

Every value sparkctl writes into a node's files (netplan YAML, an env file read by docker and by
shells, a systemd drop-in, sysctl and ssh config lines, header comments) passes one of these rules
first. The rules admit only characters that mean nothing in any of those syntaxes, so no value can
start a new line or a command wherever it lands. A rule returns the checked value or raises Invalid
with what is wrong and what to write instead; settings.py adds the file and key.
"""

from __future__ import annotations

import math
import os
import re
import reprlib
import socket
from ipaddress import IPv4Address, ip_address
from typing import Any

REPR_LIMIT = 80
MAX_VALUE_NODES = 100_000
"""Scalars and containers one inventory file may hold: far above a real cluster, far below an alias bomb."""
MAX_VALUE_DEPTH = 64

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_DOTTED_QUAD = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
_INTERFACE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_PATH = re.compile(r"^/[A-Za-z0-9_./+-]*$")

OWN_DIR_PARENTS = ("/etc/sparkctl/", "/var/lib/sparkctl/")
"""Directories only sparkctl writes in: a directory whose files sparkctl replaces must live there."""

_repr = reprlib.Repr()
_repr.maxstring = REPR_LIMIT
_repr.maxother = REPR_LIMIT
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8
_repr.maxlevel = 3


class Invalid(ValueError):
    """A value broke its rule: `message` says how, `fix` what to write instead."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


def short(value: Any) -> str:
    """A value's repr cut to about 80 characters, so a message never quotes a huge value whole."""
    text = _repr.repr(value)
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 3] + "..."


def ipv4_address(value: Any) -> IPv4Address:
    """A dotted-quad IPv4 literal; the integer and short forms (`3232235877`, `10.1`) are refused."""
    text = value if isinstance(value, str) else ""
    if not _DOTTED_QUAD.match(text):
        raise Invalid(f"{short(value)} is not an IPv4 address", "write four decimal numbers, e.g. 192.168.1.101")
    try:
        return IPv4Address(text)
    except ValueError:
        raise Invalid(f"{short(value)} is not an IPv4 address", "write four numbers 0-255, e.g. 192.168.1.101") from None


def host_name(value: Any) -> str:
    """An RFC 1123 host name (labels of letters, digits and inner hyphens, <= 63 each, <= 253 in all) or
    an IPv4 literal. The last label may not be all digits, so `3232235877` is neither name nor address."""
    fix = "use letters, digits and hyphens in dot-separated labels (e.g. spark1), or an IPv4 address"
    if not isinstance(value, str) or not value:
        raise Invalid(f"{short(value)} is not a host name", fix)
    if _DOTTED_QUAD.match(value):
        return str(ipv4_address(value))
    labels = value.split(".")
    if len(value) > 253 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise Invalid(f"{short(value)} is not a host name", fix)
    return value


def resolve_ipv4(name: str) -> IPv4Address:
    """The IPv4 address a checked host name stands for (a literal is its own address)."""
    if _DOTTED_QUAD.match(name):
        return ipv4_address(name)
    try:
        found = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Invalid(f"{short(name)} does not resolve to an IPv4 address ({exc})",
                      "write the management IPv4 address, or fix the name in DNS or /etc/hosts") from None
    address = ip_address(found[0][4][0])
    assert isinstance(address, IPv4Address)  # AF_INET asked for
    return address


def interface_name(value: Any) -> str:
    """A network interface name the kernel accepts (1-15 bytes, not `.` or `..`), limited to letters,
    digits and `_ . -`: the kernel allows more, but the name also lands in env files read by shells."""
    fix = "use up to 15 letters, digits, `_`, `.` or `-`, e.g. enP7s7"
    if not isinstance(value, str) or not _INTERFACE.match(value) or value in (".", ".."):
        raise Invalid(f"{short(value)} is not an interface name", fix)
    return value


def absolute_path(value: Any) -> str:
    """An absolute, normalised path of plain characters (no `..`, `//`, spaces or line breaks)."""
    fix = "write an absolute path such as /var/lib/sparkctl/fabric"
    if not isinstance(value, str) or not _PATH.match(value) or os.path.normpath(value) != value:
        raise Invalid(f"{short(value)} is not a normalised absolute path", fix)
    return value


def state_dir(value: Any) -> str:
    """A directory sparkctl alone owns: its files (a node's known-good config) are replaced as sparkctl sees
    fit, so `/etc/netplan` or `/` must never be one."""
    path = absolute_path(value)
    if not any(path.startswith(parent) for parent in OWN_DIR_PARENTS):
        raise Invalid(f"{path} is not a directory of sparkctl's own (sparkctl replaces the files in it)",
                      f"use a directory under {' or '.join(OWN_DIR_PARENTS)}, e.g. /var/lib/sparkctl/fabric")
    return path


def integer(value: Any, low: int, high: int, example: int) -> int:
    """A whole number in [low, high]; a string of digits counts (Ansible passes `-e` values as strings),
    a boolean does not (YAML `true` would render as `True`)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{short(value)} is not a whole number from {low} to {high}", f"write e.g. {example}")
    return value


def number(value: Any, low: float, high: float, example: float) -> float:
    """A finite number in [low, high] (`.inf` and `.nan` are YAML numbers too)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise Invalid(f"{short(value)} is not a number from {low:g} to {high:g}", f"write e.g. {example:g}")
    return float(value)


def bounded(value: Any) -> None:
    """Refuse a value too large or deep to be a real inventory (a YAML alias bomb expands to gigabytes
    when walked; this stops after MAX_VALUE_NODES)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUE_NODES or depth > MAX_VALUE_DEPTH:
            raise Invalid(f"holds more than {MAX_VALUE_NODES} values or nests deeper than {MAX_VALUE_DEPTH}",
                          "write the values out plainly (YAML aliases of aliases multiply)")
        if isinstance(item, dict):
            stack += [(child, depth + 1) for pair in item.items() for child in pair]
        elif isinstance(item, list | tuple):
            stack += [(child, depth + 1) for child in item]
