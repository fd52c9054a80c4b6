"""Read `iperf3 -c ADDR -J` client output (iperf3 3.x JSON).

Throughput is taken from `end.sum_received`: what arrived at the receiver, which is what a link
delivers (the sender's figure also counts bytes still queued or later retransmitted). iperf3 3.12
exits 0 and prints a JSON object with an `error` key when the server is missing, times out or dies
mid-test, sometimes next to partial numbers, so the `error` key is what decides failure, not the
exit code alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sparkctl.verify.parsing import ParseError

_TOOL = "iperf3 -J"


@dataclass(frozen=True)
class IperfResult:
    """One iperf3 client run. Numbers are None when the run produced none."""

    protocol: str
    streams: int
    reverse: bool
    received_gbps: float | None
    sent_gbps: float | None
    bytes_sent: int | None
    retransmits: int | None
    """TCP only: segments the sender retransmitted (the server's count when run with -R)."""
    lost_percent: float | None
    """UDP only: datagrams lost on the way."""
    error: str | None

    @property
    def ok(self) -> bool:
        """The run completed and measured something."""
        return self.error is None and self.received_gbps is not None


def parse_iperf3_json(text: str, exit_code: int | None = None) -> IperfResult:
    """Parse one client run; `exit_code` (when known) turns a silent non-zero exit into an error."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(_TOOL, f"not JSON ({exc.msg} at line {exc.lineno})", text) from None
    if not isinstance(data, dict):
        raise ParseError(_TOOL, "the JSON is not an object", text)
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        raise ParseError(_TOOL, "`error` is not a string", text)
    if error is None and exit_code not in (None, 0):
        error = f"iperf3 exited with code {exit_code}"

    test = _mapping(data.get("start"), "start", text).get("test_start", {})
    test = _mapping(test, "start.test_start", text)
    end = _mapping(data.get("end"), "end", text)
    received = end.get("sum_received", end.get("sum"))
    sent = end.get("sum_sent", end.get("sum"))
    if received is None or sent is None:
        if error is None:
            raise ParseError(_TOOL, "no error and no end.sum_received: the run did not finish", text)
        received_gbps = sent_gbps = None
        bytes_sent = retransmits = None
        lost = None
    else:
        received = _mapping(received, "end.sum_received", text)
        sent = _mapping(sent, "end.sum_sent", text)
        received_gbps = _number(received, "bits_per_second", text) / 1e9
        sent_gbps = _number(sent, "bits_per_second", text) / 1e9
        bytes_sent = int(_number(sent, "bytes", text))
        retransmits = int(sent["retransmits"]) if "retransmits" in sent else None
        lost = float(received["lost_percent"]) if "lost_percent" in received else None
    return IperfResult(
        protocol=str(test.get("protocol", "TCP")),
        streams=int(test.get("num_streams", 1)),
        reverse=bool(test.get("reverse", 0)),
        received_gbps=received_gbps,
        sent_gbps=sent_gbps,
        bytes_sent=bytes_sent,
        retransmits=retransmits,
        lost_percent=lost,
        error=error,
    )


def _mapping(value: Any, where: str, text: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParseError(_TOOL, f"`{where}` is not an object", text)
    return value


def _number(section: dict[str, Any], key: str, text: str) -> float:
    value = section.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ParseError(_TOOL, f"`{key}` is missing or not a number", text)
    return float(value)
