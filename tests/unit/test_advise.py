"""`sparkctl advise`: the first-principles model against what is known of serving on two Sparks.

A published review measured GPT-OSS-120B on two Sparks: TP=2 ahead of PP=2 at one request at a
time, PP=2 ahead from batch 8 to 128 for equal and prefill-heavy work. The model gets the first from
bytes alone. The second it gets only where the link is slow: over a 200 GbE cable at its nominal
rate the all-reduces of a large batch cost a few ms per step, far less than the half of the weights
TP saves each Spark, so the review's PP lead must come from costs beyond the wire (that deployment's
NCCL path or vLLM's TP overheads), which the model does not invent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparkctl.cli import main
from sparkctl.serving.advise import Layout, advise, estimate
from sparkctl.serving.models import BUILT_IN, find_model, read_config
from sparkctl.serving.workloads import WORKLOADS
from sparkctl.verify import measured
from sparkctl.verify.measured import NOMINAL, LinkFigures

GPT_OSS = BUILT_IN["openai/gpt-oss-120b"]
SMALL = BUILT_IN["meta-llama/Llama-3.1-8B-Instruct"]
SLOW_LINK = LinkFigures(1.25, 100e-6, "a 10 GbE link, as verify-link would save it")
"""What a cable that fell back to 10 GbE (or NCCL on the management LAN) carries."""


def _tok_s(model: object, layout: Layout, workload: str, concurrency: int, link: LinkFigures) -> float:
    return estimate(model, layout, WORKLOADS[workload], concurrency, link).tok_s  # type: ignore[arg-type]


def test_gpt_oss_120b_weights_and_bytes_per_token_match_its_checkpoint() -> None:
    assert 60e9 < GPT_OSS.weight_bytes < 70e9  # the MXFP4 checkpoint is ~65 GB
    assert 4e9 < GPT_OSS.touched_bytes(1) < 6e9  # 4 of 128 experts, attention and the output projection
    assert GPT_OSS.touched_bytes(128) > 0.95 * GPT_OSS.weight_bytes  # a big batch touches almost every expert


@pytest.mark.parametrize("workload", ["equal", "prefill-heavy", "decode-heavy"])
def test_tp_wins_one_request_at_a_time_for_gpt_oss_120b(workload: str) -> None:
    for link in (NOMINAL, SLOW_LINK):
        advice = advise(GPT_OSS, 2, WORKLOADS[workload], 1, link)
        assert advice.best is not None and advice.best.layout.name == "tp2", advice.reason()
        assert _tok_s(GPT_OSS, Layout("tp", 2), workload, 1, link) > _tok_s(GPT_OSS, Layout("pp", 2), workload, 1, link)


def test_pp_beats_tp_at_batch_128_for_gpt_oss_120b_when_the_link_is_slow() -> None:
    tp, pp = Layout("tp", 2), Layout("pp", 2)
    assert _tok_s(GPT_OSS, pp, "prefill-heavy", 128, SLOW_LINK) > 1.3 * _tok_s(GPT_OSS, tp, "prefill-heavy", 128, SLOW_LINK)
    for concurrency in (8, 64, 128):
        assert _tok_s(GPT_OSS, pp, "prefill-heavy", concurrency, SLOW_LINK) > _tok_s(
            GPT_OSS, tp, "prefill-heavy", concurrency, SLOW_LINK)


def test_over_the_nominal_cable_tp_keeps_its_lead_at_batch_128() -> None:
    """The wire alone does not explain the review's PP lead (see the module docstring)."""
    tp, pp = Layout("tp", 2), Layout("pp", 2)
    assert _tok_s(GPT_OSS, tp, "equal", 128, NOMINAL) > _tok_s(GPT_OSS, pp, "equal", 128, NOMINAL)
    fabric = estimate(GPT_OSS, tp, WORKLOADS["equal"], 128, NOMINAL)
    assert fabric.fabric_s < 0.05 * fabric.step_s


def test_replicas_win_for_a_small_model_at_high_concurrency_and_never_lose_to_pp() -> None:
    advice = advise(SMALL, 2, WORKLOADS["equal"], 128, SLOW_LINK)
    assert advice.best is not None and advice.best.layout.name == "replicas2", advice.reason()
    for workload in WORKLOADS:
        for concurrency in (1, 8, 128):
            for link in (NOMINAL, SLOW_LINK):
                assert _tok_s(SMALL, Layout("replicas", 2), workload, concurrency, link) >= _tok_s(
                    SMALL, Layout("pp", 2), workload, concurrency, link)


def test_a_model_too_big_for_one_spark_is_only_offered_across_sparks() -> None:
    advice = advise(BUILT_IN["meta-llama/Llama-3.1-70B-Instruct"], 2, WORKLOADS["equal"], 1, NOMINAL)
    fits = {c.layout.name: c.fits for c in advice.candidates}
    assert fits == {"single": False, "tp2": True, "pp2": True, "replicas2": False}
    assert "GB of weights per Spark" in next(c.why_not for c in advice.candidates if not c.fits)


def test_models_are_found_by_short_name_and_from_a_config_json(tmp_path: Path) -> None:
    assert find_model("gpt-oss-120b") is GPT_OSS and find_model("QWEN2.5-32B").layers == 64
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
                                  "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
                                  "torch_dtype": "bfloat16"}), encoding="utf-8")
    shape = read_config(config, "llama-like")
    assert abs(shape.weight_bytes - SMALL.weight_bytes) / SMALL.weight_bytes < 0.02
    assert find_model(str(tmp_path)).layers == 32


def test_a_mixture_of_experts_config_json_reads_like_the_built_in_shape(tmp_path: Path) -> None:
    """gpt-oss-120b's config.json (its fields as published): MXFP4 experts, alternating 128-token windows."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "num_hidden_layers": 36, "hidden_size": 2880, "num_attention_heads": 64, "num_key_value_heads": 8,
        "head_dim": 64, "intermediate_size": 2880, "num_local_experts": 128, "num_experts_per_tok": 4,
        "vocab_size": 201088, "tie_word_embeddings": False, "sliding_window": 128,
        "layer_types": ["sliding_attention", "full_attention"] * 18, "torch_dtype": "bfloat16",
        "quantization_config": {"quant_method": "mxfp4"}}), encoding="utf-8")
    shape = read_config(config, "gpt-oss from its config")
    for field in ("weight_bytes", "dense_bytes", "active_params"):
        assert getattr(shape, field) == pytest.approx(getattr(GPT_OSS, field), rel=0.03), field
    assert (shape.full_attention_layers, shape.window) == (18, 128)
    assert shape.kv_bytes(4096) == pytest.approx(GPT_OSS.kv_bytes(4096))


def test_saved_verify_link_figures_are_used_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(measured.STATE_ENV, str(tmp_path / "state"))
    inventory = tmp_path / "inv"
    inventory.mkdir()
    assert measured.load(inventory) == NOMINAL
    path = measured.save(inventory, [{"cable": "spark1:p0-spark2:p0", "halves_gbps": [4.0, 6.0], "gbps": 10.0,
                                      "rtt_ms": 0.08}])
    assert path is not None and path.is_relative_to(tmp_path / "state" / "link-figures")
    link = measured.load(inventory)
    assert (link.gbytes_per_s, link.rtt_s) == (1.25, 0.08e-3) and "verify-link" in link.source
    main(["advise", "--model", "gpt-oss-120b", "--inventory", str(inventory), "-c", "8", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["link"]["gbytes_per_s"] == 1.25 and "verify-link" in report["link"]["source"]
    assert {c["layout"] for c in report["candidates"]} == {"single", "tp2", "pp2", "replicas2"}
    assert report["recommendation"] == report["candidates"][0]["layout"] and report["reason"]


def test_a_config_json_with_a_bad_field_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
                                  "num_key_value_heads": "eight", "intermediate_size": 14336}), encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        main(["advise", "--model", str(config)])
    assert done.value.code == 2
    assert "num_key_value_heads" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "named"), [
    (["--model", "no-such-model"], "--model"),
    (["--model", "gpt-oss-120b", "--nodes", "0"], "--nodes"),
    (["--model", "gpt-oss-120b", "--concurrency", "0"], "--concurrency"),
    (["--model", "gpt-oss-120b", "--workload", "chatty"], "--workload"),
    (["--model", "gpt-oss-120b", "--input-len", "0"], "--input-len"),
])
def test_bad_input_exits_2_naming_the_option(args: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["advise", *args])
    assert done.value.code == 2
    assert named in capsys.readouterr().err


def test_gemma_4_26b_a4b_reads_the_same_from_its_published_config_json(tmp_path: Path) -> None:
    """Its config.json's text_config (the fields as published): 25.2 B parameters, 3.8 B per token."""
    built_in = find_model("gemma-4-26b-a4b")
    assert built_in.weight_bytes / 2 == pytest.approx(25.2e9, rel=0.01)
    assert built_in.active_params == pytest.approx(3.8e9, rel=0.02)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architectures": ["Gemma4ForConditionalGeneration"], "text_config": {
        "num_hidden_layers": 30, "hidden_size": 2816, "num_attention_heads": 16, "num_key_value_heads": 8,
        "num_global_key_value_heads": 2, "head_dim": 256, "global_head_dim": 512, "intermediate_size": 2112,
        "moe_intermediate_size": 704, "num_experts": 128, "top_k_experts": 8, "enable_moe_block": True,
        "sliding_window": 1024, "vocab_size": 262144, "tie_word_embeddings": True,
        "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 5}}), encoding="utf-8")
    shape = read_config(config, "gemma 4 from its config")
    for field in ("weight_bytes", "dense_bytes", "active_params"):
        assert getattr(shape, field) == pytest.approx(getattr(built_in, field), rel=0.01), field
    assert (shape.experts, shape.experts_per_token, shape.full_attention_layers, shape.window) == (128, 8, 5, 1024)
    assert shape.kv_bytes(8192) == pytest.approx(built_in.kv_bytes(8192))
