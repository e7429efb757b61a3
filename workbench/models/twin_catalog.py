"""Published configurations of the models workbench compares, as synthetic-twin layouts.

A :class:`TwinConfig` holds a model's published hyperparameters (see
``shared/reference/published-hparams.md``); :func:`layout` turns it into the GGUF keys and
tensor list llama.cpp's loader expects for that architecture (``src/models/<arch>.cpp``),
and :func:`assign_types` gives every tensor the type ``llama-quantize`` would choose for a
preset (``src/llama-quant.cpp``: K-quants where the row length allows, the 32-element
fallbacks where it does not, Q6_K for the output matrix, more bits for some attn_v and
ffn_down layers).

Deliberate simplifications, all of which leave the per-token bytes unchanged:

- Multi-token-prediction (MTP / NextN) layers are left out (``block_count`` is the
  number of decoder layers): llama.cpp skips them unless speculative MTP is asked for.
- The tokenizer is a synthetic byte-level BPE vocabulary of the real size (256 byte
  tokens, ``<tN>`` fillers, ``<bos>`` / ``<eos>``), so the embedding and output matrices
  have their real shapes; text in and out is not the real model's.
- Vision / audio towers are not part of the twin (they are separate mmproj files).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# GGUF value types.
UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9


@dataclass(frozen=True)
class KV:
    """One metadata entry to write."""

    key: str
    vtype: int
    value: Any
    sub: int | None = None
    """Element type of an array."""


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a layout, before a quantization preset gives it a type."""

    name: str
    shape: tuple[int, ...]
    """ggml order: ne0 (the row length) first."""


@dataclass(frozen=True)
class TwinConfig:
    """A model's published hyperparameters (the fields a twin's shapes depend on)."""

    name: str
    """Catalog name (``gemma-4-26b-a4b``)."""
    arch: str
    """GGUF ``general.architecture``."""
    title: str
    """Human name, written as ``general.name``."""
    n_vocab: int
    n_ctx_train: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int | tuple[int, ...]
    head_dim: int
    n_ff: int | tuple[int, ...]
    tied: bool
    """Output matrix shared with the token embeddings."""
    rope_base: float
    rms_eps: float = 1e-6
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Architecture-specific fields (see the layout functions)."""
    note: str = ""


def _gemma4(
    name: str, title: str, *, n_layer: int, n_embd: int, n_ff: int | tuple[int, ...],
    n_head: int, kv_swa: int, kv_full: int, window: int, period: int, shared: int,
    ple: int, ctx: int, n_expert: int = 0, n_expert_used: int = 0, n_ff_exp: int = 0,
    k_eq_v: bool = False, note: str = "",
) -> TwinConfig:  # fmt: skip
    swa = tuple(i % period != period - 1 for i in range(n_layer))
    return TwinConfig(
        name, "gemma4", title, 262144, ctx, n_embd, n_layer, n_head,
        tuple(kv_swa if s else kv_full for s in swa), 512, n_ff, True, 1_000_000.0,
        extra={"swa": swa, "head_dim_swa": 256, "window": window, "shared_kv": shared,
               "ple": ple, "n_expert": n_expert, "n_expert_used": n_expert_used,
               "n_ff_exp": n_ff_exp, "k_eq_v": k_eq_v},
        note=note,
    )  # fmt: skip


def _qwen35(
    name: str, title: str, *, n_layer: int, n_embd: int, n_ff: int, n_head: int,
    n_head_kv: int, v_heads: int, tied: bool, n_expert: int = 0, n_expert_used: int = 0,
    n_ff_exp: int = 0, n_ff_shexp: int = 0, note: str = "",
) -> TwinConfig:  # fmt: skip
    return TwinConfig(
        name, "qwen35moe" if n_expert else "qwen35", title, 248320, 262144, n_embd, n_layer,
        n_head, n_head_kv, 256, n_ff, tied, 10_000_000.0,
        extra={"v_heads": v_heads, "n_expert": n_expert, "n_expert_used": n_expert_used,
               "n_ff_exp": n_ff_exp, "n_ff_shexp": n_ff_shexp},
        note=note,
    )  # fmt: skip


CATALOG: tuple[TwinConfig, ...] = (
    _gemma4("gemma-4-e2b", "Gemma 4 E2B (twin)", n_layer=35, n_embd=1536,
            n_ff=tuple(6144 if i < 15 else 12288 for i in range(35)), n_head=8, kv_swa=1,
            kv_full=1, window=512, period=5, shared=20, ple=256, ctx=131072,
            note="per-layer embeddings; last 20 layers share KV; double-wide MLP there"),
    _gemma4("gemma-4-e4b", "Gemma 4 E4B (twin)", n_layer=42, n_embd=2560, n_ff=10240,
            n_head=8, kv_swa=2, kv_full=2, window=512, period=6, shared=18, ple=256,
            ctx=131072, note="per-layer embeddings; last 18 layers share KV"),
    _gemma4("gemma-4-26b-a4b", "Gemma 4 26B A4B (twin)", n_layer=30, n_embd=2816, n_ff=2112,
            n_head=16, kv_swa=8, kv_full=2, window=1024, period=6, shared=0, ple=0,
            ctx=262144, n_expert=128, n_expert_used=8, n_ff_exp=704, k_eq_v=True,
            note="128 experts top-8 (width 704: 32-element block types) + dense MLP"),
    _gemma4("gemma-4-31b", "Gemma 4 31B (twin)", n_layer=60, n_embd=5376, n_ff=21504,
            n_head=32, kv_swa=16, kv_full=4, window=1024, period=6, shared=0, ple=0,
            ctx=262144, k_eq_v=True, note="dense; K = V on global layers"),
    _qwen35("qwen3.5-0.8b", "Qwen3.5 0.8B (twin)", n_layer=24, n_embd=1024, n_ff=3584,
            n_head=8, n_head_kv=2, v_heads=16, tied=True),
    _qwen35("qwen3.5-2b", "Qwen3.5 2B (twin)", n_layer=24, n_embd=2048, n_ff=6144,
            n_head=8, n_head_kv=2, v_heads=16, tied=True, note="one source only"),
    _qwen35("qwen3.5-4b", "Qwen3.5 4B (twin)", n_layer=32, n_embd=2560, n_ff=9216,
            n_head=16, n_head_kv=4, v_heads=32, tied=True),
    _qwen35("qwen3.5-9b", "Qwen3.5 9B (twin)", n_layer=32, n_embd=4096, n_ff=12288,
            n_head=16, n_head_kv=4, v_heads=32, tied=False),
    _qwen35("qwen3.5-27b", "Qwen3.5 27B (twin)", n_layer=64, n_embd=5120, n_ff=17408,
            n_head=24, n_head_kv=4, v_heads=48, tied=False),
    _qwen35("qwen3.5-35b-a3b", "Qwen3.5 35B A3B (twin)", n_layer=40, n_embd=2048, n_ff=0,
            n_head=16, n_head_kv=2, v_heads=32, tied=False, n_expert=256, n_expert_used=8,
            n_ff_exp=512, n_ff_shexp=512, note="256 experts top-8 + shared expert"),
    TwinConfig("glm-4-9b", "glm4", "GLM-4-9B-0414 (twin)", 151552, 32768, 4096, 40, 32, 2,
               128, 13696, False, 10000.0, 1e-5, {"rope_dim": 64}),
    TwinConfig("glm-4-32b", "glm4", "GLM-4-32B-0414 (twin)", 151552, 32768, 6144, 61, 48, 2,
               128, 23040, False, 10000.0, 1e-5, {"rope_dim": 64}),
    TwinConfig("glm-4.5-air", "glm4moe", "GLM-4.5-Air (twin)", 151552, 131072, 4096, 46, 96,
               8, 128, 10944, False, 1_000_000.0, 1e-5,
               {"rope_dim": 64, "n_expert": 128, "n_expert_used": 8, "n_ff_exp": 1408,
                "n_dense": 1},
               note="106B total / 12B active; 128 experts top-8 + shared, first layer dense"),
    TwinConfig("glm-4.7-flash", "deepseek2", "GLM-4.7-Flash (twin)", 154880, 202752, 2048, 47,
               20, 1, 576, 10240, False, 1_000_000.0, 1e-5,
               {"q_lora": 768, "kv_lora": 512, "qk_nope": 192, "qk_rope": 64, "v_head": 256,
                "n_expert": 64, "n_expert_used": 4, "n_ff_exp": 1536, "n_dense": 1,
                "scale": 1.8},
               note="MLA (llama.cpp runs it as deepseek2); 64 experts top-4 + shared"),
)  # fmt: skip
"""Configurations a twin can be built from without any file (``catalog:NAME``)."""


def catalog_config(name: str) -> TwinConfig | None:
    """The configuration called ``name`` (case-insensitive; ``catalog:`` prefix allowed)."""
    key = name.lower().removeprefix("catalog:").removeprefix("twin:")
    return next((c for c in CATALOG if c.name == key), None)


# --------------------------------------------------------------------------- layouts


def _arr_or_int(value: int | Sequence[int]) -> KV | int:
    return value if isinstance(value, int) else KV("", ARRAY, list(value), INT32)


class _Layout:
    def __init__(self, cfg: TwinConfig) -> None:
        self.cfg = cfg
        self.kvs: list[KV] = []
        self.tensors: list[TensorSpec] = []

    def key(self, suffix: str, value: Any, vtype: int | None = None) -> None:
        full = f"{self.cfg.arch}.{suffix}"
        if isinstance(value, (list, tuple)):
            sub = BOOL if all(isinstance(v, bool) for v in value) else INT32
            self.kvs.append(KV(full, ARRAY, list(value), sub))
        elif isinstance(value, bool):
            self.kvs.append(KV(full, BOOL, value))
        elif isinstance(value, float):
            self.kvs.append(KV(full, FLOAT32, value))
        else:
            self.kvs.append(KV(full, vtype or UINT32, int(value)))

    def t(self, name: str, *shape: Any) -> None:
        self.tensors.append(TensorSpec(name, tuple(int(s) for s in shape)))

    def common(self, n_ff: Any = None) -> None:
        c = self.cfg
        self.key("context_length", c.n_ctx_train)
        self.key("embedding_length", c.n_embd)
        self.key("block_count", c.n_layer)
        ff = c.n_ff if n_ff is None else n_ff
        if ff:
            self.key("feed_forward_length", ff)
        self.key("attention.head_count", c.n_head)
        self.key("attention.head_count_kv", c.n_head_kv)
        self.key("attention.layer_norm_rms_epsilon", float(c.rms_eps))
        self.key("rope.freq_base", float(c.rope_base))
        self.key("vocab_size", c.n_vocab)

    def embeddings(self) -> None:
        c = self.cfg
        self.t("token_embd.weight", c.n_embd, c.n_vocab)
        self.t("output_norm.weight", c.n_embd)
        if not c.tied:
            self.t("output.weight", c.n_embd, c.n_vocab)


def _layout_gemma4(b: _Layout) -> None:
    c, x = b.cfg, b.cfg.extra
    n_layer, n_embd = c.n_layer, c.n_embd
    swa: tuple[bool, ...] = x["swa"]
    kv = list(c.n_head_kv) if not isinstance(c.n_head_kv, int) else [c.n_head_kv] * n_layer
    ff = list(c.n_ff) if not isinstance(c.n_ff, int) else [c.n_ff] * n_layer
    hd_full, hd_swa = c.head_dim, x["head_dim_swa"]
    b.common()
    b.key("attention.key_length", hd_full)
    b.key("attention.value_length", hd_full)
    b.key("attention.key_length_swa", hd_swa)
    b.key("attention.value_length_swa", hd_swa)
    b.key("rope.dimension_count", hd_full)
    b.key("rope.dimension_count_swa", hd_swa)
    b.key("rope.freq_base_swa", 10000.0)
    b.key("attention.sliding_window", x["window"])
    b.key("attention.sliding_window_pattern", list(swa))
    b.key("embedding_length_per_layer_input", x["ple"])
    b.key("final_logit_softcapping", 30.0)
    if x["shared_kv"]:
        b.key("attention.shared_kv_layers", x["shared_kv"])
    if x["n_expert"]:
        b.key("expert_count", x["n_expert"])
        b.key("expert_used_count", x["n_expert_used"])
        b.key("expert_feed_forward_length", x["n_ff_exp"])
    b.embeddings()
    ple = x["ple"]
    if ple:
        b.t("per_layer_token_embd.weight", ple * n_layer, c.n_vocab)
        b.t("per_layer_model_proj.weight", n_embd, ple * n_layer)
        b.t("per_layer_proj_norm.weight", ple)
    b.t("rope_freqs.weight", hd_full // 2)
    first_shared = n_layer - x["shared_kv"]
    for i in range(n_layer):
        hd = hd_swa if swa[i] else hd_full
        p = f"blk.{i}."
        b.t(p + "attn_norm.weight", n_embd)
        b.t(p + "attn_q.weight", n_embd, hd * c.n_head)
        if i < first_shared:
            b.t(p + "attn_k.weight", n_embd, hd * kv[i])
            if swa[i] or not x["k_eq_v"]:
                b.t(p + "attn_v.weight", n_embd, hd * kv[i])
            b.t(p + "attn_k_norm.weight", hd)
        b.t(p + "attn_output.weight", hd * c.n_head, n_embd)
        b.t(p + "attn_q_norm.weight", hd)
        b.t(p + "post_attention_norm.weight", n_embd)
        b.t(p + "layer_output_scale.weight", 1)
        b.t(p + "ffn_norm.weight", n_embd)
        b.t(p + "ffn_gate.weight", n_embd, ff[i])
        b.t(p + "ffn_up.weight", n_embd, ff[i])
        b.t(p + "ffn_down.weight", ff[i], n_embd)
        b.t(p + "post_ffw_norm.weight", n_embd)
        if x["n_expert"]:
            n_exp, n_ff_exp = x["n_expert"], x["n_ff_exp"]
            b.t(p + "ffn_gate_inp.weight", n_embd, n_exp)
            b.t(p + "ffn_gate_inp.scale", n_embd)
            b.t(p + "pre_ffw_norm_2.weight", n_embd)
            b.t(p + "post_ffw_norm_1.weight", n_embd)
            b.t(p + "post_ffw_norm_2.weight", n_embd)
            b.t(p + "ffn_gate_up_exps.weight", n_embd, 2 * n_ff_exp, n_exp)
            b.t(p + "ffn_down_exps.weight", n_ff_exp, n_embd, n_exp)
            b.t(p + "ffn_down_exps.scale", n_exp)
        if ple:
            b.t(p + "inp_gate.weight", n_embd, ple)
            b.t(p + "proj.weight", ple, n_embd)
            b.t(p + "post_norm.weight", n_embd)


def _layout_qwen35(b: _Layout) -> None:
    c, x = b.cfg, b.cfg.extra
    n_embd, hd = c.n_embd, c.head_dim
    n_kv = int(c.n_head_kv) if isinstance(c.n_head_kv, int) else c.n_head_kv[0]
    d_state, n_groups, n_v = 128, 16, x["v_heads"]
    d_inner = d_state * n_v
    b.common()
    b.key("attention.key_length", hd)
    b.key("attention.value_length", hd)
    b.key("rope.dimension_count", 64)
    b.key("rope.dimension_sections", [11, 11, 10, 0])
    b.key("full_attention_interval", 4)
    b.key("ssm.conv_kernel", 4)
    b.key("ssm.state_size", d_state)
    b.key("ssm.group_count", n_groups)
    b.key("ssm.time_step_rank", n_v)
    b.key("ssm.inner_size", d_inner)
    moe = bool(x["n_expert"])
    if moe:
        b.key("expert_count", x["n_expert"])
        b.key("expert_used_count", x["n_expert_used"])
        b.key("expert_feed_forward_length", x["n_ff_exp"])
        b.key("expert_shared_feed_forward_length", x["n_ff_shexp"])
    b.embeddings()
    key_dim = d_state * n_groups
    conv_dim = 2 * key_dim + d_inner
    for i in range(c.n_layer):
        p = f"blk.{i}."
        b.t(p + "attn_norm.weight", n_embd)
        b.t(p + "post_attention_norm.weight", n_embd)
        if (i + 1) % 4 == 0:
            b.t(p + "attn_q.weight", n_embd, 2 * hd * c.n_head)  # query + output gate
            b.t(p + "attn_k.weight", n_embd, hd * n_kv)
            b.t(p + "attn_v.weight", n_embd, hd * n_kv)
            b.t(p + "attn_output.weight", hd * c.n_head, n_embd)
            b.t(p + "attn_q_norm.weight", hd)
            b.t(p + "attn_k_norm.weight", hd)
        else:
            b.t(p + "attn_qkv.weight", n_embd, conv_dim)
            b.t(p + "attn_gate.weight", n_embd, d_inner)
            b.t(p + "ssm_conv1d.weight", 4, conv_dim)
            b.t(p + "ssm_dt.bias", n_v)
            b.t(p + "ssm_a", n_v)
            b.t(p + "ssm_beta.weight", n_embd, n_v)
            b.t(p + "ssm_alpha.weight", n_embd, n_v)
            b.t(p + "ssm_norm.weight", d_state)
            b.t(p + "ssm_out.weight", d_inner, n_embd)
        if moe:
            n_exp, n_ff_exp, n_sh = x["n_expert"], x["n_ff_exp"], x["n_ff_shexp"]
            b.t(p + "ffn_gate_inp.weight", n_embd, n_exp)
            b.t(p + "ffn_gate_exps.weight", n_embd, n_ff_exp, n_exp)
            b.t(p + "ffn_up_exps.weight", n_embd, n_ff_exp, n_exp)
            b.t(p + "ffn_down_exps.weight", n_ff_exp, n_embd, n_exp)
            b.t(p + "ffn_gate_inp_shexp.weight", n_embd)
            b.t(p + "ffn_gate_shexp.weight", n_embd, n_sh)
            b.t(p + "ffn_up_shexp.weight", n_embd, n_sh)
            b.t(p + "ffn_down_shexp.weight", n_sh, n_embd)
        else:
            b.t(p + "ffn_gate.weight", n_embd, c.n_ff)
            b.t(p + "ffn_up.weight", n_embd, c.n_ff)
            b.t(p + "ffn_down.weight", c.n_ff, n_embd)


def _attn_qkv_bias(b: _Layout, p: str) -> None:
    c = b.cfg
    n_kv = int(c.n_head_kv) if isinstance(c.n_head_kv, int) else c.n_head_kv[0]
    q, kv = c.head_dim * c.n_head, c.head_dim * n_kv
    b.t(p + "attn_q.weight", c.n_embd, q)
    b.t(p + "attn_k.weight", c.n_embd, kv)
    b.t(p + "attn_v.weight", c.n_embd, kv)
    b.t(p + "attn_q.bias", q)
    b.t(p + "attn_k.bias", kv)
    b.t(p + "attn_v.bias", kv)
    b.t(p + "attn_output.weight", q, c.n_embd)


def _layout_glm4(b: _Layout) -> None:
    c = b.cfg
    b.common()
    b.key("attention.key_length", c.head_dim)
    b.key("attention.value_length", c.head_dim)
    b.key("rope.dimension_count", c.extra["rope_dim"])
    b.embeddings()
    for i in range(c.n_layer):
        p = f"blk.{i}."
        b.t(p + "attn_norm.weight", c.n_embd)
        _attn_qkv_bias(b, p)
        b.t(p + "post_attention_norm.weight", c.n_embd)
        b.t(p + "ffn_norm.weight", c.n_embd)
        ff = c.n_ff if isinstance(c.n_ff, int) else max(c.n_ff)
        b.t(p + "ffn_up.weight", c.n_embd, 2 * ff)  # gate and up, fused
        b.t(p + "ffn_down.weight", c.n_ff, c.n_embd)
        b.t(p + "post_ffw_norm.weight", c.n_embd)


def _moe_block(b: _Layout, p: str, n_exp: int, n_ff_exp: int, n_ff_sh: int) -> None:
    n_embd = b.cfg.n_embd
    b.t(p + "ffn_gate_inp.weight", n_embd, n_exp)
    b.t(p + "exp_probs_b.bias", n_exp)
    b.t(p + "ffn_gate_exps.weight", n_embd, n_ff_exp, n_exp)
    b.t(p + "ffn_up_exps.weight", n_embd, n_ff_exp, n_exp)
    b.t(p + "ffn_down_exps.weight", n_ff_exp, n_embd, n_exp)
    b.t(p + "ffn_gate_shexp.weight", n_embd, n_ff_sh)
    b.t(p + "ffn_up_shexp.weight", n_embd, n_ff_sh)
    b.t(p + "ffn_down_shexp.weight", n_ff_sh, n_embd)


def _moe_keys(b: _Layout, x: dict[str, Any], scale: float) -> None:
    b.key("expert_count", x["n_expert"])
    b.key("expert_used_count", x["n_expert_used"])
    b.key("expert_feed_forward_length", x["n_ff_exp"])
    b.key("expert_shared_count", 1)
    b.key("leading_dense_block_count", x["n_dense"])
    b.key("expert_weights_scale", float(scale))
    b.key("expert_weights_norm", True)
    b.key("expert_gating_func", 2)  # sigmoid


def _dense_ffn(b: _Layout, p: str) -> None:
    c = b.cfg
    b.t(p + "ffn_gate.weight", c.n_embd, c.n_ff)
    b.t(p + "ffn_up.weight", c.n_embd, c.n_ff)
    b.t(p + "ffn_down.weight", c.n_ff, c.n_embd)


def _layout_glm4moe(b: _Layout) -> None:
    c, x = b.cfg, b.cfg.extra
    b.common()
    b.key("attention.key_length", c.head_dim)
    b.key("attention.value_length", c.head_dim)
    b.key("rope.dimension_count", x["rope_dim"])
    _moe_keys(b, x, 1.0)
    b.embeddings()
    for i in range(c.n_layer):
        p = f"blk.{i}."
        b.t(p + "attn_norm.weight", c.n_embd)
        _attn_qkv_bias(b, p)
        b.t(p + "post_attention_norm.weight", c.n_embd)
        if i < x["n_dense"]:
            _dense_ffn(b, p)
        else:
            _moe_block(b, p, x["n_expert"], x["n_ff_exp"], x["n_ff_exp"])


def _layout_deepseek2(b: _Layout) -> None:
    c, x = b.cfg, b.cfg.extra
    n_embd, n_head = c.n_embd, c.n_head
    q_lora, kv_lora, nope, rope, v_head = (
        x["q_lora"], x["kv_lora"], x["qk_nope"], x["qk_rope"], x["v_head"]
    )  # fmt: skip
    b.common()
    b.key("attention.q_lora_rank", q_lora)
    b.key("attention.kv_lora_rank", kv_lora)
    b.key("attention.key_length", kv_lora + rope)
    b.key("attention.value_length", kv_lora)
    b.key("attention.key_length_mla", nope + rope)
    b.key("attention.value_length_mla", v_head)
    b.key("rope.dimension_count", rope)
    _moe_keys(b, x, x["scale"])
    b.embeddings()
    for i in range(c.n_layer):
        p = f"blk.{i}."
        b.t(p + "attn_norm.weight", n_embd)
        b.t(p + "attn_q_a_norm.weight", q_lora)
        b.t(p + "attn_kv_a_norm.weight", kv_lora)
        b.t(p + "attn_q_a.weight", n_embd, q_lora)
        b.t(p + "attn_q_b.weight", q_lora, n_head * (nope + rope))
        b.t(p + "attn_kv_a_mqa.weight", n_embd, kv_lora + rope)
        b.t(p + "attn_k_b.weight", nope, kv_lora, n_head)
        b.t(p + "attn_v_b.weight", kv_lora, v_head, n_head)
        b.t(p + "attn_output.weight", n_head * v_head, n_embd)
        b.t(p + "ffn_norm.weight", n_embd)
        if i < x["n_dense"]:
            _dense_ffn(b, p)
        else:
            _moe_block(b, p, x["n_expert"], x["n_ff_exp"], x["n_ff_exp"])


_LAYOUTS = {
    "gemma4": _layout_gemma4,
    "qwen35": _layout_qwen35,
    "qwen35moe": _layout_qwen35,
    "glm4": _layout_glm4,
    "glm4moe": _layout_glm4moe,
    "deepseek2": _layout_deepseek2,
}


def layout(cfg: TwinConfig) -> tuple[list[KV], list[TensorSpec]]:
    """The architecture keys (``{arch}.*``) and tensors of ``cfg``, in loader order."""
    b = _Layout(cfg)
    _LAYOUTS[cfg.arch](b)
    return b.kvs, b.tensors


# --------------------------------------------------------------------------- tokenizer


def _byte_tokens() -> list[str]:
    """GPT-2's byte -> printable-unicode map (what byte-level BPE vocabularies store)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = {b: chr(b) for b in keep}
    n = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + n)
            n += 1
    return [chars[b] for b in range(256)]


def synthetic_vocab_kvs(n_vocab: int) -> list[KV]:
    """A byte-level BPE tokenizer of ``n_vocab`` tokens that llama.cpp loads: 256 byte
    tokens (so any text tokenizes), ``<tN>`` fillers, and control tokens ``<bos>`` and
    ``<eos>`` as the last two ids; no merges."""
    if n_vocab < 260:
        raise ValueError("a synthetic vocabulary needs at least 260 tokens")
    tokens = _byte_tokens() + [f"<t{i}>" for i in range(256, n_vocab - 2)] + ["<bos>", "<eos>"]
    types = [1] * (n_vocab - 2) + [3, 3]
    return [
        KV("tokenizer.ggml.model", STRING, "gpt2"),
        KV("tokenizer.ggml.pre", STRING, "default"),
        KV("tokenizer.ggml.tokens", ARRAY, tokens, STRING),
        KV("tokenizer.ggml.token_type", ARRAY, types, INT32),
        KV("tokenizer.ggml.merges", ARRAY, [], STRING),
        KV("tokenizer.ggml.bos_token_id", UINT32, n_vocab - 2),
        KV("tokenizer.ggml.eos_token_id", UINT32, n_vocab - 1),
        KV("tokenizer.ggml.add_bos_token", BOOL, False),
    ]


# --------------------------------------------------------------------------- quantization mix

# Presets: name -> (default ggml type name, llama_ftype value).
PRESETS: dict[str, tuple[str, int]] = {
    "Q4_0": ("Q4_0", 2),
    "Q8_0": ("Q8_0", 7),
    "Q4_K_S": ("Q4_K", 14),
    "Q4_K_M": ("Q4_K", 15),
    "Q5_K_S": ("Q5_K", 16),
    "Q5_K_M": ("Q5_K", 17),
    "Q6_K": ("Q6_K", 18),
    "F16": ("F16", 1),
    "BF16": ("BF16", 32),
}
"""Quantization presets :func:`assign_types` knows (llama-quantize's names)."""

_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "Q2_K": "Q4_0", "Q3_K": "Q4_0"}
_BLOCK = {"Q4_0": 32, "Q5_0": 32, "Q5_1": 32, "Q8_0": 32, "Q4_K": 256, "Q5_K": 256,
          "Q6_K": 256, "F16": 1, "BF16": 1, "F32": 1}  # fmt: skip
# Tensors the converter writes in F32 whatever the preset.
_F32_NAMES = ("ffn_gate_inp.weight", "ssm_conv1d", "ffn_gate_inp_shexp")


def _allows_quant(spec: TensorSpec) -> bool:
    """llama-quant.cpp ``tensor_allows_quantization`` for the names twins use."""
    n = spec.name
    return (
        len(spec.shape) >= 2
        and n.endswith("weight")
        and "_norm.weight" not in n
        and "ffn_gate_inp.weight" not in n
        and "per_layer_model_proj" not in n
        and "ssm_conv1d" not in n
    )


def _category(name: str) -> str:
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for needle, cat in (
        ("attn_qkv.weight", "attn_v"), ("attn_kv_b.weight", "attn_v"),
        ("attn_v.weight", "attn_v"), ("attn_k.weight", "attn_k"),
        ("attn_q.weight", "attn_q"), ("attn_output.weight", "attn_output"),
        ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"), ("ffn_down", "ffn_down"),
    ):  # fmt: skip
        if needle in name:
            return cat
    return "other"


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _fallback(t: str, ne0: int) -> str:
    if ne0 % _BLOCK[t] == 0:
        return t
    t = _FALLBACK.get(t, t)
    return t if ne0 % _BLOCK[t] == 0 else "F16"


def assign_types(
    tensors: Sequence[TensorSpec], preset: str, *, n_layer: int, n_expert: int = 0
) -> list[str]:
    """ggml type names, one per tensor, as ``llama-quantize`` would choose for ``preset``.

    Follows ``llama_tensor_get_type_impl`` for the presets in :data:`PRESETS`: output (and
    tied token embeddings) in Q6_K (Q8_0 stays Q8_0); attn_v and ffn_down get Q6_K on
    ``use_more_bits`` layers in the _M presets (fused attn_qkv counts as attn_v); 8-expert
    models get Q8_0 attn_k / attn_v; rows whose length is not a multiple of the block
    fall back to the 32-element type (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0).
    Tensors that are never quantized keep the converter's type (F32 for 1-D tensors and
    routers, BF16 for other 2-D ones).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown quantization {preset!r}; known: {', '.join(PRESETS)}")
    default, _ = PRESETS[preset]
    tied = not any(t.name == "output.weight" for t in tensors)
    n_attn_v = sum(_category(t.name) == "attn_v" for t in tensors)
    i_attn_v = i_ffn_down = 0
    out = []
    for t in tensors:
        if not _allows_quant(t):
            dense_2d = len(t.shape) >= 2 and not any(s in t.name for s in _F32_NAMES)
            out.append("BF16" if dense_2d else "F32")
            continue
        cat, ne0 = _category(t.name), t.shape[0]
        new = default
        if default in ("F16", "BF16"):
            out.append(default)
            continue
        if cat == "output" or (tied and cat == "token_embd"):
            new = "Q8_0" if ne0 % _BLOCK[default] else (default if default == "Q8_0" else "Q6_K")
        elif cat == "attn_v":
            if preset in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i_attn_v, n_attn_v):
                new = "Q6_K"
            elif preset == "Q4_K_S" and i_attn_v < 4:
                new = "Q5_K"
            if n_expert == 8:
                new = "Q8_0"
            i_attn_v += 1
        elif cat == "attn_k" and n_expert == 8:
            new = "Q8_0"
        elif cat == "ffn_down":
            i_layer = int(t.name.split(".")[1]) if n_expert > 1 else i_ffn_down
            if preset in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i_layer, n_layer):
                new = "Q6_K"
            elif preset == "Q4_K_S" and i_layer < n_layer // 8:
                new = "Q5_K"
            i_ffn_down += 1
        elif cat == "attn_output" and n_expert == 8 and preset in ("Q4_K_S", "Q4_K_M"):
            new = "Q5_K"
        out.append(_fallback(new, ne0))
    return out


def iter_catalog() -> Iterator[TwinConfig]:
    """Every catalog configuration."""
    yield from CATALOG
