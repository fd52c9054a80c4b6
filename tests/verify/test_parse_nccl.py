"""nccl-tests output: a Spark pair at MTU 1500 (16G all_gather, from a public issue; the output is
only available up to its bounds line), a full 2-node sweep with summary, and a failed run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkctl.verify.parse_nccl import parse_nccl_tests
from sparkctl.verify.parsing import ParseError

Read = Callable[[str], str]


def test_spark_pair_16g(captured: Read) -> None:
    result = parse_nccl_tests(captured("nccl-all-gather-perf-spark-16g-mtu1500.txt"))
    assert result.collective == "all_gather_perf"
    assert result.ranks == 2
    assert len(result.rows) == 1
    row = result.rows[0]
    assert (row.size_bytes, row.count, row.datatype) == (17179869184, 2147483648, "float")
    assert (row.oop_time_us, row.oop_algbw, row.oop_busbw) == (453650.0, 37.87, 18.94)
    assert (row.ip_algbw, row.ip_busbw) == (41.90, 20.95)
    assert result.busbw == 18.94
    assert result.avg_busbw is None
    assert result.out_of_bounds == 0
    assert not result.wrong
    assert result.errors == ()


def test_sweep_judges_largest_size_and_keeps_average(captured: Read) -> None:
    result = parse_nccl_tests(captured("nccl-all-gather-perf-2node-a3.txt"))
    assert len(result.rows) == 11
    assert result.busbw == 122.14
    assert result.avg_busbw == pytest.approx(22.449)
    assert result.ranks is None


def test_failed_run(captured: Read) -> None:
    result = parse_nccl_tests(captured("nccl-tests-failure-rccl.txt"))
    assert result.rows == ()
    assert result.busbw is None
    assert result.errors[0] == "catalyst-convoy: Test NCCL failure common.cu:1285 'unhandled cuda error'"


def test_wrong_results_are_flagged(captured: Read) -> None:
    text = captured("nccl-all-gather-perf-spark-16g-mtu1500.txt").replace("18.94       0", "18.94       3")
    result = parse_nccl_tests(text)
    assert result.rows[0].oop_wrong == 3
    assert result.wrong


def test_no_table_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="no result rows"):
        parse_nccl_tests("mpirun was unable to launch the specified application\n")
