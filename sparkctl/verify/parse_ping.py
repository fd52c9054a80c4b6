"""Read iputils `ping` output: the loss summary, and the errors that reveal an MTU mismatch.

A jumbo probe (`ping -M do -s 8972`, DF set) fails in three recognisable ways when one end or a hop
is still at MTU 1500: the small side refuses locally ("local error: message too long, mtu=1500"),
a router answers "Frag needed and DF set (mtu = 1500)", or the big side's frames are dropped by the
peer and ping reports "sendmsg: No buffer space available". All three are kept so the verdict can
tell an MTU fault from plain loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparkctl.verify.parsing import ParseError

_SUMMARY = re.compile(r"^(\d+) packets transmitted, (\d+) received(.*?), ([\d.]+)% packet loss", re.MULTILINE)
_EXTRA = re.compile(r"\+(\d+) (duplicates|corrupted|errors)")
_RTT = re.compile(r"^(?:rtt|round-trip) min/avg/max/mdev = [\d.]+/([\d.]+)/", re.MULTILINE)
_MTU_ERRORS = (
    re.compile(r"message too long, mtu=(\d+)"),
    re.compile(r"Frag needed and DF set \(mtu = (\d+)\)"),
    re.compile(r"sendmsg: No buffer space available()"),
)
_FATAL = re.compile(r"^ping: (?!local error|sendmsg)(.+)$", re.MULTILINE)
_REPLY_FROM = re.compile(r"^\d+ bytes from ([0-9a-fA-F:.]+)(?:%(\S+?))?: ", re.MULTILINE)


@dataclass(frozen=True)
class PingResult:
    """One ping run. `error` is set when ping gave up before sending (no route, bad name)."""

    transmitted: int
    received: int
    errors: int
    duplicates: int
    loss_percent: float
    rtt_avg_ms: float | None
    mtu_errors: tuple[str, ...]
    """Each line that says a DF packet did not fit, verbatim."""
    reported_mtu: int | None
    """The smallest MTU those lines name (none for "No buffer space available")."""
    unreachable: bool
    error: str | None

    @property
    def mtu_problem(self) -> bool:
        """The probe failed because a packet was larger than some MTU on the path."""
        return bool(self.mtu_errors)


def parse_ping(text: str) -> PingResult:
    """Parse the whole output of one `ping -c N` run."""
    summary = _SUMMARY.search(text)
    if summary is None:
        fatal = _FATAL.search(text)
        if fatal is None:
            raise ParseError("ping", "no `packets transmitted` summary", text)
        return PingResult(0, 0, 0, 0, 100.0, None, (), None, False, fatal.group(1).strip())
    extras = {kind: int(count) for count, kind in _EXTRA.findall(summary.group(3))}
    mtu_lines: list[str] = []
    mtus: list[int] = []
    for line in text.splitlines():
        for pattern in _MTU_ERRORS:
            match = pattern.search(line)
            if match:
                mtu_lines.append(line.strip())
                if match.group(1):
                    mtus.append(int(match.group(1)))
    rtt = _RTT.search(text)
    return PingResult(
        transmitted=int(summary.group(1)),
        received=int(summary.group(2)),
        errors=extras.get("errors", 0),
        duplicates=extras.get("duplicates", 0),
        loss_percent=float(summary.group(4)),
        rtt_avg_ms=float(rtt.group(1)) if rtt else None,
        mtu_errors=tuple(mtu_lines),
        reported_mtu=min(mtus) if mtus else None,
        unreachable="Destination Host Unreachable" in text,
        error=None,
    )


def parse_ping_responders(text: str) -> list[tuple[str, str | None]]:
    """The (address, interface) pairs that answered, in order, each once.

    Used with `ping -6 -c 2 ff02::1%IF`: every node on the link answers the all-nodes multicast
    from its link-local address, the sender included, so the caller removes its own address.
    """
    seen: list[tuple[str, str | None]] = []
    for address, interface in _REPLY_FROM.findall(text):
        entry = (address, interface or None)
        if entry not in seen:
            seen.append(entry)
    return seen
