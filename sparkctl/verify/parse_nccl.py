"""Read nccl-tests output (`all_gather_perf` and friends): the result table and its summary lines.

The figure compared with NVIDIA's thresholds is the out-of-place bus bandwidth (busbw, GB/s) of the
largest message size: `-b 16G -e 16G` gives one row, and with a size sweep the small sizes only
measure latency. The "# Avg bus bandwidth" line averages every row, in-place included, so it is
kept for the report but not used to judge. A run can die before its summary ("Test NCCL failure"),
and the output can be cut before it; both are handled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sparkctl.verify.parsing import ParseError

_TOOL = "nccl-tests"
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*([\d.]+)", re.MULTILINE)
_BOUNDS = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d+)\s+(\w+)", re.MULTILINE)
_COLLECTIVE = re.compile(r"^#\s*Collective test starting:\s*(\S+)", re.MULTILINE)
_RANK = re.compile(r"^#\s+Rank\s+\d+\s", re.MULTILINE)
_HEADER = re.compile(r"^#\s*(size\s+count\s+type\b.*?\btime\b.*)$", re.MULTILINE)
_FAILURE = re.compile(r"^(.*Test (?:NCCL |CUDA )?failure.*?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class NcclRow:
    """One message size: out-of-place and in-place time (us), algbw and busbw (GB/s), #wrong."""

    size_bytes: int
    count: int
    datatype: str
    oop_time_us: float
    oop_algbw: float
    oop_busbw: float
    oop_wrong: float | None
    ip_time_us: float
    ip_algbw: float
    ip_busbw: float
    ip_wrong: float | None
    """None where nccl-tests printed N/A (validation off)."""


@dataclass(frozen=True)
class NcclResult:
    """A whole run."""

    collective: str | None
    ranks: int | None
    rows: tuple[NcclRow, ...]
    avg_busbw: float | None
    out_of_bounds: int | None
    errors: tuple[str, ...]

    @property
    def busbw(self) -> float | None:
        """Out-of-place busbw (GB/s) at the largest message size."""
        return max(self.rows, key=lambda row: row.size_bytes).oop_busbw if self.rows else None

    @property
    def wrong(self) -> bool:
        """Any row reported corrupted results, or values out of bounds."""
        flagged = any((row.oop_wrong or 0) > 0 or (row.ip_wrong or 0) > 0 for row in self.rows)
        return flagged or bool(self.out_of_bounds)


def parse_nccl_tests(text: str) -> NcclResult:
    """Parse the stdout of one nccl-tests binary (the rank-0 output under mpirun)."""
    header = _HEADER.search(text)
    # Columns before the timings: `size count type redop root` since nccl-tests 2.x, fewer before.
    offset = header.group(1).split().index("time") if header else 5
    rows = tuple(row for line in text.splitlines() if (row := _row(line, offset)) is not None)
    errors = tuple(_FAILURE.findall(text))
    if not rows and not errors:
        raise ParseError(_TOOL, "no result rows and no `Test ... failure` line", text)
    avg = _AVG.search(text)
    bounds = _BOUNDS.search(text)
    collective = _COLLECTIVE.search(text)
    ranks = len(_RANK.findall(text))
    return NcclResult(
        collective=collective.group(1) if collective else None,
        ranks=ranks or None,
        rows=rows,
        avg_busbw=float(avg.group(1)) if avg else None,
        out_of_bounds=int(bounds.group(1)) if bounds else None,
        errors=errors,
    )


def _row(line: str, offset: int) -> NcclRow | None:
    """A table row: `size count type [redop root] time algbw busbw wrong time algbw busbw wrong [...]`."""
    if line.lstrip().startswith("#"):
        return None
    fields = line.split()
    if len(fields) < offset + 8 or not (fields[0].isdigit() and fields[1].isdigit()) or _is_number(fields[2]):
        return None
    values = fields[offset : offset + 8]
    if not all(_is_number(v) or v == "N/A" for v in values):
        return None
    numbers = [None if v == "N/A" else float(v) for v in values]
    if any(n is None for i, n in enumerate(numbers) if i not in (3, 7)):
        return None
    return NcclRow(
        size_bytes=int(fields[0]),
        count=int(fields[1]),
        datatype=fields[2],
        oop_time_us=float(values[0]),
        oop_algbw=float(values[1]),
        oop_busbw=float(values[2]),
        oop_wrong=numbers[3],
        ip_time_us=float(values[4]),
        ip_algbw=float(values[5]),
        ip_busbw=float(values[6]),
        ip_wrong=numbers[7],
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
