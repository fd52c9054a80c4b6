"""perftest ib_write_bw reports: Spark captures published by owners, and public samples.

ib-write-bw-spark-report-gbits-q4.txt: a healthy half (111.71 Gb/s); ib-write-bw-spark-hotplug-13gbps.txt:
the table of a Spark whose cable was hot-plugged (13.22 Gb/s); the MB/sec, multi-size and failure
samples come from public guides and bug reports.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkctl.verify.parse_perftest import NO_ROWS, parse_perftest
from sparkctl.verify.parsing import ParseError

Read = Callable[[str], str]


def test_spark_half_report_gbits(captured: Read) -> None:
    result = parse_perftest(captured("ib-write-bw-spark-report-gbits-q4.txt"))
    assert result.error is None
    assert result.test == "RDMA_Write BW Test"
    assert result.device == "rocep1s0f1"
    assert result.unit == "Gb/sec"
    assert len(result.rows) == 1
    row = result.rows[0]
    assert (row.size_bytes, row.iterations, row.peak_gbps, row.average_gbps) == (65536, 20000, 111.72, 111.71)
    assert result.average_gbps == 111.71


def test_spark_hotplugged_cable_table_only(captured: Read) -> None:
    result = parse_perftest(captured("ib-write-bw-spark-hotplug-13gbps.txt"))
    assert result.average_gbps == 13.22
    assert result.rows[0].msg_rate_mpps == pytest.approx(0.001576)


def test_mb_per_sec_is_mebibytes_converted_to_gbps(captured: Read) -> None:
    result = parse_perftest(captured("ib-write-bw-rxe-mbsec.txt"))
    assert result.unit == "MB/sec"
    assert result.device == "rxe0"
    # 110.28 MiB/s * 1048576 * 8 bit = 0.92510 Gb/s; the CPU-frequency warning line is skipped.
    assert result.average_gbps == pytest.approx(0.925096, abs=1e-6)


def test_all_sizes_uses_largest(captured: Read) -> None:
    result = parse_perftest(captured("ib-write-bw-all-sizes-report-gbits.txt"))
    assert len(result.rows) == 23
    assert result.rows[0].size_bytes == 2
    assert result.rows[-1].size_bytes == 8388608
    assert result.average_gbps == 204.59


def test_connect_failure(captured: Read) -> None:
    result = parse_perftest(captured("ib-write-bw-connect-failure.txt"))
    assert result.rows == ()
    assert result.average_gbps is None
    assert result.error == "Failed to modify QP 59 to RTR; Unable to Connect the HCA's through the link"


def test_header_without_rows_is_an_error_not_zero(captured: Read) -> None:
    text = captured("ib-write-bw-spark-report-gbits-q4.txt")
    cut = text[: text.index(" 65536      20000")]
    result = parse_perftest(cut)
    assert result.error == NO_ROWS
    assert result.average_gbps is None


def test_banner_without_table_is_an_error(captured: Read) -> None:
    text = captured("ib-write-bw-spark-report-gbits-q4.txt")
    result = parse_perftest(text[: text.index(" #bytes")])
    assert result.error == NO_ROWS


def test_unrelated_text_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="header"):
        parse_perftest("sh: 1: ib_write_bw: not found\n")
