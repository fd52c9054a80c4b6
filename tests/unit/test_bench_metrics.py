"""The arithmetic of `sparkctl bench serve`, held to how `vllm bench serve` computes the same fields."""

from __future__ import annotations

import pytest

from sparkctl.commands.bench import parse_concurrency
from sparkctl.errors import InputError
from sparkctl.serving import compare
from sparkctl.serving.client import _Events
from sparkctl.serving.metrics import RequestResult, peak_output, percentile, summarize


def _done(start: float, ttft: float, itl: list[float], prompt_len: int = 10) -> RequestResult:
    return RequestResult(prompt_len=prompt_len, start_time=start, success=True, ttft=ttft, itl=itl,
                         latency=ttft + sum(itl), output_tokens=len(itl) + 1)


def test_percentiles_interpolate_between_ranks_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    # numpy.percentile(values, [50, 90, 99]) == [3.0, 7.6, 9.76]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 90) == pytest.approx(7.6)
    assert percentile(values, 99) == pytest.approx(9.76)
    assert percentile([5.0], 99) == 5.0 and percentile([], 50) == 0.0


def test_summary_has_vllms_fields_and_its_tpot_definition() -> None:
    results = [_done(0.0, 0.1, [0.01, 0.02, 0.03]), _done(0.05, 0.2, [0.02, 0.02, 0.02]),
               RequestResult(prompt_len=10, error="HTTP 500: boom")]
    summary = summarize(results, duration=2.0)
    assert (summary["completed"], summary["failed"]) == (2, 1)
    assert (summary["total_input_tokens"], summary["total_output_tokens"]) == (20, 8)
    assert summary["output_throughput"] == 4.0 and summary["request_throughput"] == 1.0
    assert summary["total_token_throughput"] == 14.0
    # TPOT = (latency - ttft) / (output tokens - 1): 0.06 / 3 for both requests
    assert summary["mean_tpot_ms"] == pytest.approx(20.0) and summary["p99_tpot_ms"] == pytest.approx(20.0)
    assert summary["median_ttft_ms"] == pytest.approx(150.0) and summary["std_ttft_ms"] == pytest.approx(50.0)
    assert summary["p50_itl_ms"] == pytest.approx(20.0) and summary["mean_itl_ms"] == pytest.approx(20.0)
    assert summary["mean_e2el_ms"] == pytest.approx((160 + 260) / 2)
    assert summary["errors"] == ["", "", "HTTP 500: boom"]
    for name in ("ttft", "tpot", "itl", "e2el"):
        assert {f"mean_{name}_ms", f"median_{name}_ms", f"std_{name}_ms", f"p50_{name}_ms", f"p90_{name}_ms",
                f"p99_{name}_ms"} <= set(summary)


def test_peak_tokens_per_second_and_requests_in_flight() -> None:
    results = [_done(0.0, 0.5, [0.1] * 4), _done(0.2, 0.1, [0.1] * 5), _done(2.0, 0.1, [0.1])]
    tokens, in_flight = peak_output(results)
    assert in_flight == 2  # the third starts after the first two have ended
    assert tokens == 11  # second 0 holds all 5 tokens of the first and all 6 of the second


def test_a_run_where_everything_failed_reports_zeros_not_errors() -> None:
    summary = summarize([RequestResult(prompt_len=5, error="refused")], duration=1.0)
    assert summary["completed"] == 0 and summary["output_throughput"] == 0 and summary["mean_ttft_ms"] == 0


def test_events_split_across_chunks_are_timed_when_their_bytes_arrive() -> None:
    result = RequestResult(prompt_len=3, start_time=10.0)
    events = _Events(result)
    token = b'data: {"choices": [{"index": 0, "text": "a"}]}\n\n'
    events.feed(token + token[:20], 10.5)  # one whole event and the start of the next
    events.feed(token[20:] + token, 10.7)  # the rest of it and one more
    events.feed(b'data: {"choices": [], "usage": {"completion_tokens": 3}}\n\ndata: [DONE]\n\n', 10.8)
    events.finish()
    assert result.success and result.output_tokens == 3
    assert result.ttft == pytest.approx(0.5) and result.itl == pytest.approx([0.2, 0.0])
    assert result.latency == pytest.approx(0.7)


def test_a_stream_without_a_token_is_a_failure() -> None:
    result = RequestResult(prompt_len=3, start_time=1.0)
    events = _Events(result)
    events.feed(b"data: [DONE]\n\n", 1.1)
    events.finish()
    assert not result.success and "without a token" in result.error


@pytest.mark.parametrize("text", ["0", "1,x", "", "2000", "-1"])
def test_bad_concurrency_lists_name_the_option(text: str) -> None:
    with pytest.raises(InputError, match="--concurrency"):
        parse_concurrency(text)


def test_concurrency_lists_keep_their_order_once_each() -> None:
    assert parse_concurrency("1, 4,4,2") == (1, 4, 2)


def _level(workload: str, concurrency: int, tok_s: float) -> dict[str, object]:
    level: dict[str, object] = {"workload": workload, "input_len": 1024, "output_len": 1024,
                                "max_concurrency": concurrency}
    return level | {field: 0 for field in compare.CELL_FIELDS} | {"output_throughput": tok_s}


def test_compare_puts_each_cell_side_by_side_with_its_winner() -> None:
    runs = {"pp2": [_level("equal", 1, 28.8), _level("equal", 128, 554.7), _level("equal", 8, 100.0)],
            "tp2": [_level("equal", 1, 39.6), _level("equal", 128, 252.0), _level("equal", 8, 101.0)]}
    cells = compare.cells(runs)
    assert [(c["max_concurrency"], c["winner"]) for c in cells] == [(1, "tp2"), (128, "pp2"), (8, "tie")]
    assert cells[1]["lead"] == pytest.approx(554.7 / 252.0, abs=1e-3)
    assert set(cells[0]["results"]) == {"pp2", "tp2"}
    assert set(cells[0]["results"]["pp2"]) == set(compare.CELL_FIELDS)


def test_compare_leaves_out_a_cell_one_layout_did_not_run() -> None:
    cells = compare.cells({"pp2": [_level("equal", 1, 10.0), _level("equal", 2, 20.0)],
                           "tp2": [_level("equal", 2, 0.0)]})
    assert [(c["max_concurrency"], c["winner"], c["lead"]) for c in cells] == [(2, "pp2", None)]


def test_the_two_layouts_differ_from_the_declared_entry_only_in_the_split() -> None:
    declared = [{"name": "small", "kind": "vllm", "nodes": ["spark1"]},
                {"name": "big", "kind": "vllm", "nodes": ["spark1", "spark2"], "tensor_parallel": 2, "port": 8000}]
    pp, tp = compare.variants(declared, 1, 2)
    assert (pp.layout, tp.layout) == ("pp2", "tp2")
    assert pp.services[0] is declared[0] and tp.services[0] is declared[0]
    assert pp.services[1] == {"name": "big", "kind": "vllm", "nodes": ["spark1", "spark2"], "port": 8000,
                              "pipeline_parallel": 2}
    assert tp.services[1] == declared[1] and declared[1]["tensor_parallel"] == 2


def test_ollamas_end_marker_is_no_token_and_its_usage_gives_both_lengths() -> None:
    """Ollama: a zero usage on every chunk, an empty chunk with the finish_reason, then the usage."""
    result = RequestResult(prompt_len=8, start_time=0.0)
    events = _Events(result)
    zero = b', "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}\n\n'
    for moment, text in ((0.1, b"a "), (0.2, b"b ")):
        events.feed(b'data: {"choices": [{"text": "' + text + b'", "index": 0, "finish_reason": null}]' + zero, moment)
    events.feed(b'data: {"choices": [{"text": "", "index": 0, "finish_reason": "stop"}]' + zero, 0.5)
    events.feed(b'data: {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 2}}\n\n'
                b'data: [DONE]\n\n', 0.5)
    events.finish()
    assert result.success and (result.prompt_len, result.output_tokens) == (11, 2)
    assert result.itl == pytest.approx([0.1]) and result.latency == pytest.approx(0.2)
