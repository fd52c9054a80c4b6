"""The shapes of the models `sparkctl advise` knows, and the reading of a Hugging Face config.json.

An estimate needs only what decides bytes and FLOPs per token: layers, hidden size, the attention's
KV heads and head size (KV-cache bytes), the weight bytes in memory, and for a mixture of experts
how many experts a token reads. The built-in table gives those for models people run on Sparks; the
figures come from each model's config.json and checkpoint size on the Hugging Face hub. Any other
model is read from its config.json (a path, or the local Hugging Face cache).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkctl.errors import InputError

GB = 1e9
MXFP4_BYTES_PER_PARAM = 4.25 / 8
"""4-bit values plus one 8-bit scale per 32 (OCP microscaling), as gpt-oss ships its experts."""


@dataclass(frozen=True)
class ModelShape:
    """What decides a model's bytes and FLOPs per token."""

    name: str
    layers: int
    hidden: int
    kv_heads: int
    head_dim: int
    weight_bytes: float
    """Every weight in memory, as the checkpoint stores it."""
    dense_bytes: float
    """Weights every token reads: attention, norms, dense MLPs, the output projection."""
    active_params: float
    """Parameters one token multiplies by (2 FLOPs each)."""
    experts: int = 0
    experts_per_token: int = 0
    full_attention_layers: int | None = None
    """Layers whose KV cache spans the whole context; the others keep `window` tokens. None: all."""
    window: int = 0
    kv_bytes_per_value: int = 2
    full_kv_values: int | None = None
    """K and V values per token of a full-attention layer where they differ from the windowed layers'
    (Gemma 4: 2 KV heads of 512 there, 8 of 256 elsewhere). None: the same."""

    @property
    def expert_bytes(self) -> float:
        return self.weight_bytes - self.dense_bytes

    def kv_bytes(self, context: float) -> float:
        """KV-cache bytes of one sequence of `context` tokens: K and V per KV head per layer."""
        windowed_values = 2 * self.kv_heads * self.head_dim
        full_values = windowed_values if self.full_kv_values is None else self.full_kv_values
        full = self.layers if self.full_attention_layers is None else self.full_attention_layers
        windowed = self.layers - full
        return self.kv_bytes_per_value * (full_values * full * context + windowed_values * windowed * min(
            context, self.window))

    def touched_bytes(self, tokens: float) -> float:
        """Weight bytes one forward pass over `tokens` tokens reads: the dense part once, and each
        expert when at least one token routes to it (routing taken as uniform)."""
        if not self.experts:
            return self.weight_bytes
        untouched: float = (1 - self.experts_per_token / self.experts) ** max(tokens, 1.0)
        return self.dense_bytes + self.expert_bytes * (1 - untouched)


def _gpt_oss(name: str, layers: int, experts: int, total_params: float) -> ModelShape:
    """gpt-oss: hidden 2880, 64 query / 8 KV heads of 64, experts of 3 x 2880 x 2880 in MXFP4, every
    other layer a 128-token sliding window, a 201088-token vocabulary (openai/gpt-oss-* config.json)."""
    hidden, vocab = 2880, 201088
    attention = layers * (2 * hidden * 64 * 64 + 2 * hidden * 8 * 64)
    expert_params = layers * experts * 3 * hidden * hidden
    dense_params = total_params - expert_params
    unembedding = vocab * hidden
    return ModelShape(
        name=name, layers=layers, hidden=hidden, kv_heads=8, head_dim=64,
        weight_bytes=expert_params * MXFP4_BYTES_PER_PARAM + dense_params * 2,
        dense_bytes=(attention + unembedding) * 2,
        active_params=attention + unembedding + layers * 4 * 3 * hidden * hidden,
        experts=experts, experts_per_token=4, full_attention_layers=layers // 2, window=128)


def _gemma4_moe(name: str) -> ModelShape:
    """Gemma 4 26B-A4B (its config.json's text_config): 30 layers of hidden 2816, 16 query heads; five in
    six layers attend to a 1024-token window with 8 KV heads of 256, every sixth to the whole context
    with 2 KV heads of 512; each layer has a dense GELU MLP of 2112 beside 128 experts of 704, 8 per
    token; a tied 262144-token vocabulary; BF16. That is 25.2 B parameters, 3.8 B per token, as
    published."""
    layers, hidden, heads, vocab, full_layers = 30, 2816, 16, 262144, 5
    windowed = (layers - full_layers) * (2 * hidden * heads * 256 + 2 * hidden * 8 * 256)
    full = full_layers * (2 * hidden * heads * 512 + 2 * hidden * 2 * 512)
    dense_mlp = layers * 3 * hidden * 2112
    expert = 3 * hidden * 704
    embeddings = vocab * hidden
    dense = windowed + full + dense_mlp + embeddings
    return ModelShape(name=name, layers=layers, hidden=hidden, kv_heads=8, head_dim=256,
                      weight_bytes=(dense + layers * 128 * expert) * 2, dense_bytes=dense * 2,
                      active_params=dense + layers * 8 * expert, experts=128, experts_per_token=8,
                      full_attention_layers=full_layers, window=1024, full_kv_values=2 * 2 * 512)


def _dense(name: str, layers: int, hidden: int, kv_heads: int, head_dim: int, params: float,
           bytes_per_param: float = 2, full_attention_layers: int | None = None, window: int = 0) -> ModelShape:
    return ModelShape(name=name, layers=layers, hidden=hidden, kv_heads=kv_heads, head_dim=head_dim,
                      weight_bytes=params * bytes_per_param, dense_bytes=params * bytes_per_param,
                      active_params=params, full_attention_layers=full_attention_layers, window=window)


BUILT_IN: dict[str, ModelShape] = {m.name: m for m in (
    _gpt_oss("openai/gpt-oss-120b", layers=36, experts=128, total_params=116.83e9),
    _gpt_oss("openai/gpt-oss-20b", layers=24, experts=32, total_params=20.91e9),
    _dense("meta-llama/Llama-3.1-8B-Instruct", 32, 4096, 8, 128, 8.03e9),
    _dense("meta-llama/Llama-3.1-70B-Instruct", 80, 8192, 8, 128, 70.55e9),
    _dense("nvidia/Llama-3.1-70B-Instruct-FP8", 80, 8192, 8, 128, 70.55e9, bytes_per_param=1),
    _dense("Qwen/Qwen2.5-32B-Instruct", 64, 5120, 8, 128, 32.76e9),
    _dense("Qwen/Qwen2.5-7B-Instruct", 28, 3584, 4, 128, 7.62e9),
    _dense("google/gemma-3-27b-it", 62, 5376, 16, 128, 27.43e9, full_attention_layers=10, window=1024),
    _gemma4_moe("google/gemma-4-26B-A4B-it"),
    _dense("mistralai/Mistral-Small-3.2-24B-Instruct-2506", 40, 5120, 8, 128, 24.0e9),
)}
"""Keyed by Hugging Face id; `--model` also takes the part after the slash, any case."""


def find_model(text: str, env: dict[str, str] | None = None) -> ModelShape:
    """`--model`: a built-in name, a config.json (or its directory), or an id in the local HF cache."""
    wanted = _short(text)
    for name, shape in BUILT_IN.items():
        if wanted in (name.lower(), _short(name)):
            return shape
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return read_config(path, text)
    cached = _in_hf_cache(text, os.environ if env is None else env)
    if cached is not None:
        return read_config(cached, text)
    known = ", ".join(_short(n) for n in BUILT_IN)
    raise InputError(f"{text!r} is neither a built-in model, a config.json nor a model in the local "
                     "Hugging Face cache", key="--model",
                     fix=f"use one of {known}, or pass the path of the model's config.json")


def _short(name: str) -> str:
    """`Qwen/Qwen2.5-32B-Instruct` -> `qwen2.5-32b`: what people type."""
    short = name.strip().lower().rsplit("/", 1)[-1]
    for suffix in ("-instruct-2506", "-instruct", "-it"):
        short = short.removesuffix(suffix)
    return short


def _in_hf_cache(model_id: str, env: dict[str, str] | os._Environ[str]) -> Path | None:
    home = Path(env.get("HF_HOME") or Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface")
    snapshots = Path(env.get("HF_HUB_CACHE") or home / "hub") / ("models--" + model_id.replace("/", "--")) / "snapshots"
    found = sorted(snapshots.glob("*/config.json")) if snapshots.is_dir() else []
    return found[0] if found else None


_DTYPE_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "float8_e4m3fn": 1.0}


def _bytes_per_param(raw: dict[str, Any], config: dict[str, Any]) -> tuple[float, float]:
    """Bytes per parameter of the dense weights and of the experts, from the dtype and quantization.

    MXFP4 (gpt-oss) quantizes the experts only; FP8 and n-bit integer schemes every linear layer.
    """
    dense = _DTYPE_BYTES.get(str(config.get("torch_dtype") or raw.get("torch_dtype") or "bfloat16"), 2.0)
    quant = raw.get("quantization_config") or config.get("quantization_config")
    if not isinstance(quant, dict) or not quant:
        return dense, dense
    method = str(quant.get("quant_method", ""))
    bits = quant.get("bits") or quant.get("w_bit")
    if method == "mxfp4":
        return dense, MXFP4_BYTES_PER_PARAM
    if isinstance(bits, int) and not isinstance(bits, bool) and 1 <= bits <= 16:
        return bits / 8, bits / 8
    if method in ("fp8", "compressed-tensors", "modelopt"):
        return 1.0, 1.0
    return dense, dense


def _full_attention_layers(config: dict[str, Any], layers: int) -> tuple[int | None, int]:
    """How many layers attend to the whole context (None: all), and the others' window in tokens."""
    window = config.get("sliding_window")
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        return None, 0
    kinds = config.get("layer_types")
    if isinstance(kinds, list) and len(kinds) == layers:
        return sum(1 for kind in kinds if kind != "sliding_attention"), window
    pattern = config.get("sliding_window_pattern")
    if isinstance(pattern, int) and pattern > 0:
        return layers // pattern, window
    return (0, window) if config.get("use_sliding_window") else (None, 0)


def read_config(path: Path, name: str) -> ModelShape:
    """A ModelShape from a Hugging Face config.json (text models, dense or mixture of experts)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot be read: {exc}", file=path, fix="pass the model's config.json") from None
    if not isinstance(raw, dict):
        raise InputError("is not a JSON object", file=path, fix="pass the model's config.json")
    text_config = raw.get("text_config")
    config: dict[str, Any] = text_config if isinstance(text_config, dict) else raw

    def need(key: str, default: int | None = None) -> int:
        value = config.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if default is not None else 1):
            raise InputError(f"has no positive integer {key}", file=path, key=key,
                             fix="pass the config.json of a transformer text model")
        return value

    layers, hidden, heads = need("num_hidden_layers"), need("hidden_size"), need("num_attention_heads")
    kv_heads = need("num_key_value_heads", heads) or heads
    head_dim = need("head_dim", hidden // heads) or hidden // heads
    vocab = need("vocab_size", 0)
    experts = need("num_local_experts", 0) or need("num_experts", 0)
    per_token = need("num_experts_per_tok", 0) or need("top_k_experts", 0)
    full_layers, window = _full_attention_layers(config, layers)
    # Gemma 4: full-attention layers have their own KV heads and head size
    full_kv_heads, full_head_dim = need("num_global_key_value_heads", kv_heads), need("global_head_dim", head_dim)
    full_count = layers if full_layers is None else full_layers
    attention = ((layers - full_count) * (2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim)
                 + full_count * (2 * hidden * heads * full_head_dim + 2 * hidden * full_kv_heads * full_head_dim))
    full_kv_values = (2 * full_kv_heads * full_head_dim if (full_kv_heads, full_head_dim) != (kv_heads, head_dim)
                      else None)
    tied = config.get("tie_word_embeddings", raw.get("tie_word_embeddings"))
    unembedding = vocab * hidden
    embeddings = unembedding * (1 if tied else 2)
    dense_bytes, expert_bytes = _bytes_per_param(raw, config)

    def shape(weight: float, dense: float, active: float, moe: tuple[int, int] = (0, 0)) -> ModelShape:
        return ModelShape(name=name, layers=layers, hidden=hidden, kv_heads=kv_heads, head_dim=head_dim,
                          weight_bytes=weight, dense_bytes=dense, active_params=active, experts=moe[0],
                          experts_per_token=moe[1], full_attention_layers=full_layers, window=window,
                          full_kv_values=full_kv_values)

    if experts and per_token:
        inner = need("moe_intermediate_size") if "moe_intermediate_size" in config else need("intermediate_size")
        expert_params = layers * experts * 3 * hidden * inner
        beside = need("intermediate_size") if config.get("enable_moe_block") is True else 0  # Gemma 4's dense MLP
        shared = layers * 3 * hidden * (need("shared_expert_intermediate_size", 0) + beside)
        return shape(expert_params * expert_bytes + (attention + shared + embeddings) * dense_bytes,
                     (attention + shared + unembedding) * dense_bytes,
                     attention + shared + unembedding + layers * per_token * 3 * hidden * inner, (experts, per_token))
    mlp = layers * 3 * hidden * need("intermediate_size")
    return shape((attention + mlp + embeddings) * dense_bytes, (attention + mlp + unembedding) * dense_bytes,
                 attention + mlp + unembedding)
