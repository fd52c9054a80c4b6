"""Read the report of a perftest bandwidth test (`ib_write_bw`, also `ib_read_bw`/`ib_send_bw`).

perftest prints its table in Gb/s with `--report_gbits` and otherwise in MB/sec, where a "MB" is
2^20 bytes (perftest divides by 0x100000), so both are converted to decimal Gb/s here. With `-a`
there is one row per message size; the largest size is the one that measures the link. A run can
also end with no row at all: a connection failure prints "Unable to Connect the HCA's through the
link", and on RoCE a wrong GID index (`-x`) has been seen to print the whole header, no result row
and exit 0, so an empty table is reported as an error, never as 0 Gb/s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparkctl.verify.parsing import ParseError

_TOOL = "ib_write_bw"
_HEADER = re.compile(r"#bytes\s+(#sl\s+)?#iterations\s+BW peak\[(Gb/sec|MB/sec)\]\s+BW average\[(?:Gb/sec|MB/sec)\]")
_NUMBER = r"(\d+(?:\.\d+)?)"
_FAILURE = re.compile(r"^\s*((?:Failed|Unable|Couldn't|Could not)\b.*?)\s*$", re.MULTILINE)
_DEVICE = re.compile(r"\bDevice\s*:\s*(\S+)")
_TEST = re.compile(r"^\s*(\S.*? BW Test)\s*$", re.MULTILINE)
_MIB_PER_S_IN_GBPS = 1048576 * 8 / 1e9
NO_ROWS = "the test printed its header but no result row (on RoCE a wrong GID index -x does this)"


@dataclass(frozen=True)
class PerftestRow:
    """One message size. Bandwidths in decimal Gb/s whatever unit perftest printed."""

    size_bytes: int
    iterations: int
    peak_gbps: float
    average_gbps: float
    msg_rate_mpps: float


@dataclass(frozen=True)
class PerftestResult:
    """A whole run: the rows, or the reason there are none."""

    test: str | None
    device: str | None
    unit: str | None
    rows: tuple[PerftestRow, ...]
    error: str | None

    @property
    def average_gbps(self) -> float | None:
        """Average bandwidth at the largest message size, the figure a link check compares."""
        return self.rows[-1].average_gbps if self.rows else None


def parse_perftest(text: str) -> PerftestResult:
    """Parse client (or server) output of one perftest bandwidth run."""
    header = _HEADER.search(text)
    failures: list[str] = _FAILURE.findall(text)
    test = _TEST.search(text)
    device = _DEVICE.search(text)
    if header is None and not failures:
        if test is None:
            raise ParseError(_TOOL, "no `#bytes #iterations BW peak[...]` header and no test banner", text)
        failures.append(NO_ROWS)
    rows: list[PerftestRow] = []
    unit = None
    if header is not None:
        unit = header.group(2)
        scale = 1.0 if unit == "Gb/sec" else _MIB_PER_S_IN_GBPS
        skip_sl = header.group(1) is not None
        row = re.compile(r"^\s*(\d+)\s+" + (r"\d+\s+" if skip_sl else "") + r"(\d+)\s+" + r"\s+".join([_NUMBER] * 3))
        for line in text[header.end():].splitlines():
            if line.strip().startswith("---") and rows:
                break
            match = row.match(line)
            if match:
                size, iters, peak, avg, rate = match.groups()
                rows.append(PerftestRow(int(size), int(iters), float(peak) * scale, float(avg) * scale, float(rate)))
        if not rows and not failures:
            failures.append(NO_ROWS)
    return PerftestResult(
        test=test.group(1) if test else None,
        device=device.group(1) if device else None,
        unit=unit,
        rows=tuple(rows),
        error="; ".join(failures) if failures else None,
    )
