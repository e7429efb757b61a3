"""One tensor layout per architecture: the GGUF keys and tensors llama.cpp's loader expects.

:func:`layout` turns a model's hyperparameters (:class:`Hparams`) into the ``{arch}.*``
metadata entries and the tensor list (names and shapes, in loader order) of that
architecture (llama.cpp ``src/llama-model.cpp`` and ``src/models/<arch>.cpp``). Both
the synthetic twins (published configurations at full size, :mod:`workbench.models.twin`)
and the tiny test fixtures (:mod:`workbench.testing.fixtures`) are built from it, so a
tensor the loader expects appears in both or in neither. Types and data are the
caller's: a twin gives every tensor llama-quantize's type, a fixture F32 / F16 values.

Adding an architecture is one ``_layout_<arch>`` function registered in :data:`LAYOUTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.gguf import MetaEntry
from workbench.models.catalog import Hparams


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a layout, before a type is chosen for it."""

    name: str
    shape: tuple[int, ...]
    """ggml order: ne0 (the row length) first."""


@dataclass(frozen=True)
class TensorLayout:
    """What :func:`layout` returns: an architecture's keys and tensors for one model."""

    entries: tuple[MetaEntry, ...]
    """The ``{arch}.*`` metadata entries (general.* and tokenizer.* are the caller's)."""
    tensors: tuple[TensorSpec, ...]
    """Every tensor the loader expects, in loader order."""


def per_layer(value: int | Sequence[int], n: int) -> list[int]:
    """``value`` as one entry per layer."""
    return [int(value)] * n if isinstance(value, int) else [int(v) for v in value]


class _Builder:
    def __init__(self, hp: Hparams) -> None:
        self.hp = hp
        self.entries: list[MetaEntry] = []
        self.tensors: list[TensorSpec] = []

    def key(self, suffix: str, value: Any) -> None:
        self.entries.append(MetaEntry.of(f"{self.hp.arch}.{suffix}", value))

    def t(self, name: str, *shape: Any) -> None:
        self.tensors.append(TensorSpec(name, tuple(int(s) for s in shape)))

    def common(self) -> None:
        c = self.hp
        self.key("context_length", c.n_ctx_train)
        self.key("embedding_length", c.n_embd)
        self.key("block_count", c.n_layer)
        if c.n_ff:
            self.key("feed_forward_length", c.n_ff)
        self.key("attention.head_count", c.n_head)
        self.key("attention.head_count_kv", c.n_head_kv)
        self.key("attention.layer_norm_rms_epsilon", float(c.rms_eps))
        self.key("rope.freq_base", float(c.rope_base))
        self.key("vocab_size", c.n_vocab)

    def head_sizes(self, rope_dim: int | None = None) -> None:
        hd = self.hp.head_dim
        self.key("attention.key_length", hd)
        self.key("attention.value_length", hd)
        self.key("rope.dimension_count", hd if rope_dim is None else rope_dim)

    def embeddings(self) -> None:
        c = self.hp
        self.t("token_embd.weight", c.n_embd, c.n_vocab)
        self.t("output_norm.weight", c.n_embd)
        if not c.tied:
            self.t("output.weight", c.n_embd, c.n_vocab)

    def attention(self, p: str, hd: int, n_kv: int, *, q_mult: int = 1, bias: bool = False) -> None:
        """Separate Q, K, V and output projections (``q_mult`` 2: query and output gate)."""
        n_embd, q, kv = self.hp.n_embd, hd * self.hp.n_head, hd * n_kv
        self.t(p + "attn_q.weight", n_embd, q * q_mult)
        self.t(p + "attn_k.weight", n_embd, kv)
        self.t(p + "attn_v.weight", n_embd, kv)
        if bias:
            self.t(p + "attn_q.bias", q)
            self.t(p + "attn_k.bias", kv)
            self.t(p + "attn_v.bias", kv)
        self.t(p + "attn_output.weight", q, n_embd)

    def ffn(self, p: str, n_ff: int) -> None:
        n_embd = self.hp.n_embd
        self.t(p + "ffn_gate.weight", n_embd, n_ff)
        self.t(p + "ffn_up.weight", n_embd, n_ff)
        self.t(p + "ffn_down.weight", n_ff, n_embd)


def _layout_llama(b: _Builder) -> None:
    """llama and qwen3 (qwen3 adds Q/K norms)."""
    c = b.hp
    if c.arch == "llama" and c.head_dim * c.n_head != c.n_embd:
        raise ValueError("llama requires head_dim * n_head == n_embd")
    b.common()
    b.head_sizes()
    b.embeddings()
    n_kv, ff = per_layer(c.n_head_kv, c.n_layer), per_layer(c.n_ff, c.n_layer)
    for i in range(c.n_layer):
        p = f"blk.{i}."
        b.t(p + "attn_norm.weight", c.n_embd)
        b.attention(p, c.head_dim, n_kv[i])
        if c.arch == "qwen3":
            b.t(p + "attn_q_norm.weight", c.head_dim)
            b.t(p + "attn_k_norm.weight", c.head_dim)
        b.t(p + "ffn_norm.weight", c.n_embd)
        b.ffn(p, ff[i])


def _layout_gemma3(b: _Builder) -> None:
    """Gemma 3: sliding-window layers by an integer period, sandwich norms, QK norms.

    extra: ``window`` (sliding window), ``swa_pattern`` (every n-th layer is global),
    ``rope_base_swa``.
    """
    c, x = b.hp, b.hp.extra
    b.common()
    b.key("attention.key_length", c.head_dim)
    b.key("attention.value_length", c.head_dim)
    b.key("attention.sliding_window", x["window"])
    b.key("attention.sliding_window_pattern", x["swa_pattern"])  # the integer form
    b.key("rope.freq_base_swa", float(x.get("rope_base_swa", 10000.0)))
    b.embeddings()
    n_kv, ff = per_layer(c.n_head_kv, c.n_layer), per_layer(c.n_ff, c.n_layer)
    for i in range(c.n_layer):
        p = f"blk.{i}."
        b.t(p + "attn_norm.weight", c.n_embd)
        b.attention(p, c.head_dim, n_kv[i])
        b.t(p + "post_attention_norm.weight", c.n_embd)
        b.t(p + "attn_q_norm.weight", c.head_dim)
        b.t(p + "attn_k_norm.weight", c.head_dim)
        b.t(p + "ffn_norm.weight", c.n_embd)
        b.ffn(p, ff[i])
        b.t(p + "post_ffw_norm.weight", c.n_embd)


def _layout_gemma4(b: _Builder) -> None:
    """Gemma 4: a per-layer sliding-window pattern with separate head sizes, per-layer
    embeddings, KV shared by the last layers, K = V on global layers, and a mixture of
    experts beside the dense MLP.

    extra: ``swa`` (a bool per layer, True = sliding), ``head_dim_swa``, ``window``,
    ``shared_kv`` (trailing layers that reuse KV), ``ple`` (per-layer embedding width,
    0 = none), ``n_expert``, ``n_expert_used``, ``n_ff_exp``, ``k_eq_v`` (global layers
    have no V projection), ``rope_base_swa`` (10000), ``softcap`` (30).
    """
    c, x = b.hp, b.hp.extra
    n_layer, n_embd = c.n_layer, c.n_embd
    swa: tuple[bool, ...] = tuple(bool(s) for s in x["swa"])
    if len(swa) != n_layer:
        raise ValueError(f"the sliding-window pattern has {len(swa)} entries for {n_layer} layers")
    kv, ff = per_layer(c.n_head_kv, n_layer), per_layer(c.n_ff, n_layer)
    hd_full, hd_swa = c.head_dim, x["head_dim_swa"]
    b.common()
    b.key("attention.key_length", hd_full)
    b.key("attention.value_length", hd_full)
    b.key("attention.key_length_swa", hd_swa)
    b.key("attention.value_length_swa", hd_swa)
    b.key("rope.dimension_count", hd_full)
    b.key("rope.dimension_count_swa", hd_swa)
    b.key("rope.freq_base_swa", float(x.get("rope_base_swa", 10000.0)))
    b.key("attention.sliding_window", x["window"])
    b.key("attention.sliding_window_pattern", list(swa))
    # llama.cpp reads this key without a default, so it is written even when 0.
    b.key("embedding_length_per_layer_input", x["ple"])
    b.key("final_logit_softcapping", float(x.get("softcap", 30.0)))
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
        b.ffn(p, ff[i])
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


def _layout_qwen35(b: _Builder) -> None:
    """Qwen 3.5 (qwen35, qwen35moe): Gated DeltaNet layers with full attention every
    ``interval``-th layer (query + output gate), dense or mixture-of-experts FFN.

    extra: ``v_heads`` (linear value heads), ``d_state`` (128), ``n_groups`` (linear key
    heads, 16), ``rope_dim`` (64), ``rope_sections`` ([11, 11, 10, 0]), ``interval`` (4),
    ``conv`` (4), and for MoE ``n_expert``, ``n_expert_used``, ``n_ff_exp``, ``n_ff_shexp``.
    """
    c, x = b.hp, b.hp.extra
    n_embd, hd = c.n_embd, c.head_dim
    n_kv = per_layer(c.n_head_kv, c.n_layer)
    d_state, n_groups, n_v = x.get("d_state", 128), x.get("n_groups", 16), x["v_heads"]
    interval, conv = x.get("interval", 4), x.get("conv", 4)
    d_inner = d_state * n_v  # ssm.inner_size must equal state_size x time_step_rank
    b.common()
    b.key("attention.key_length", hd)
    b.key("attention.value_length", hd)
    b.key("rope.dimension_count", x.get("rope_dim", 64))
    b.key("rope.dimension_sections", list(x.get("rope_sections", (11, 11, 10, 0))))
    b.key("full_attention_interval", interval)
    b.key("ssm.conv_kernel", conv)
    b.key("ssm.state_size", d_state)
    b.key("ssm.group_count", n_groups)
    b.key("ssm.time_step_rank", n_v)
    b.key("ssm.inner_size", d_inner)
    moe = bool(x.get("n_expert"))
    if moe:
        b.key("expert_count", x["n_expert"])
        b.key("expert_used_count", x["n_expert_used"])
        b.key("expert_feed_forward_length", x["n_ff_exp"])
        b.key("expert_shared_feed_forward_length", x["n_ff_shexp"])
    b.embeddings()
    conv_dim = 2 * d_state * n_groups + d_inner
    ff = per_layer(c.n_ff, c.n_layer)
    for i in range(c.n_layer):
        p = f"blk.{i}."
        b.t(p + "attn_norm.weight", n_embd)
        b.t(p + "post_attention_norm.weight", n_embd)
        if (i + 1) % interval == 0:
            b.attention(p, hd, n_kv[i], q_mult=2)  # query + output gate
            b.t(p + "attn_q_norm.weight", hd)
            b.t(p + "attn_k_norm.weight", hd)
        else:
            b.t(p + "attn_qkv.weight", n_embd, conv_dim)
            b.t(p + "attn_gate.weight", n_embd, d_inner)
            b.t(p + "ssm_conv1d.weight", conv, conv_dim)
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
            b.ffn(p, ff[i])


def _layout_glm4(b: _Builder) -> None:
    """GLM-4 0414: Q/K/V with biases, partial rotary, sandwich norms, fused gate+up.

    extra: ``rope_dim`` (rotary dimensions).
    """
    c = b.hp
    b.common()
    b.head_sizes(c.extra["rope_dim"])
    b.embeddings()
    n_kv, ff = per_layer(c.n_head_kv, c.n_layer), per_layer(c.n_ff, c.n_layer)
    for i in range(c.n_layer):
        p = f"blk.{i}."
        b.t(p + "attn_norm.weight", c.n_embd)
        b.attention(p, c.head_dim, n_kv[i], bias=True)
        b.t(p + "post_attention_norm.weight", c.n_embd)
        b.t(p + "ffn_norm.weight", c.n_embd)
        b.t(p + "ffn_up.weight", c.n_embd, 2 * ff[i])  # gate and up, fused
        b.t(p + "ffn_down.weight", ff[i], c.n_embd)
        b.t(p + "post_ffw_norm.weight", c.n_embd)


def _moe_block(b: _Builder, p: str, n_exp: int, n_ff_exp: int, n_ff_sh: int) -> None:
    n_embd = b.hp.n_embd
    b.t(p + "ffn_gate_inp.weight", n_embd, n_exp)
    b.t(p + "exp_probs_b.bias", n_exp)
    b.t(p + "ffn_gate_exps.weight", n_embd, n_ff_exp, n_exp)
    b.t(p + "ffn_up_exps.weight", n_embd, n_ff_exp, n_exp)
    b.t(p + "ffn_down_exps.weight", n_ff_exp, n_embd, n_exp)
    b.t(p + "ffn_gate_shexp.weight", n_embd, n_ff_sh)
    b.t(p + "ffn_up_shexp.weight", n_embd, n_ff_sh)
    b.t(p + "ffn_down_shexp.weight", n_ff_sh, n_embd)


def _moe_keys(b: _Builder, x: dict[str, Any], scale: float) -> None:
    b.key("expert_count", x["n_expert"])
    b.key("expert_used_count", x["n_expert_used"])
    b.key("expert_feed_forward_length", x["n_ff_exp"])
    b.key("expert_shared_count", 1)
    b.key("leading_dense_block_count", x["n_dense"])
    b.key("expert_weights_scale", float(scale))
    b.key("expert_weights_norm", True)
    b.key("expert_gating_func", 2)  # sigmoid


def _layout_glm4moe(b: _Builder) -> None:
    """GLM-4.5: leading dense layers, then 1 shared + routed experts with a bias.

    extra: ``rope_dim``, ``n_expert``, ``n_expert_used``, ``n_ff_exp``, ``n_dense``.
    """
    c, x = b.hp, b.hp.extra
    b.common()
    b.head_sizes(x["rope_dim"])
    _moe_keys(b, x, 1.0)
    b.embeddings()
    n_kv, ff = per_layer(c.n_head_kv, c.n_layer), per_layer(c.n_ff, c.n_layer)
    for i in range(c.n_layer):
        p = f"blk.{i}."
        b.t(p + "attn_norm.weight", c.n_embd)
        b.attention(p, c.head_dim, n_kv[i], bias=True)
        b.t(p + "post_attention_norm.weight", c.n_embd)
        if i < x["n_dense"]:
            b.ffn(p, ff[i])
        else:
            _moe_block(b, p, x["n_expert"], x["n_ff_exp"], x["n_ff_exp"])


def _layout_deepseek2(b: _Builder) -> None:
    """DeepSeek-2 style MLA (GLM-4.7-Flash runs as it): compressed KV, leading dense
    layers, then shared + routed experts.

    extra: ``q_lora``, ``kv_lora``, ``qk_nope``, ``qk_rope``, ``v_head``, ``n_expert``,
    ``n_expert_used``, ``n_ff_exp``, ``n_dense``, ``scale`` (routed expert scaling).
    """
    c, x = b.hp, b.hp.extra
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
    ff = per_layer(c.n_ff, c.n_layer)
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
            b.ffn(p, ff[i])
        else:
            _moe_block(b, p, x["n_expert"], x["n_ff_exp"], x["n_ff_exp"])


LAYOUTS: dict[str, Callable[[_Builder], None]] = {
    "llama": _layout_llama,
    "qwen3": _layout_llama,
    "gemma3": _layout_gemma3,
    "gemma4": _layout_gemma4,
    "qwen35": _layout_qwen35,
    "qwen35moe": _layout_qwen35,
    "glm4": _layout_glm4,
    "glm4moe": _layout_glm4moe,
    "deepseek2": _layout_deepseek2,
}
"""Architecture -> its layout function."""


def layout(hp: Hparams) -> TensorLayout:
    """The architecture keys (``{arch}.*``) and tensors of ``hp``, in loader order.

    Raises:
        ValueError: an architecture without a layout, or inconsistent hyperparameters.
    """
    fn = LAYOUTS.get(hp.arch)
    if fn is None:
        raise ValueError(
            f"no tensor layout for architecture {hp.arch!r}; known: {', '.join(LAYOUTS)}"
        )
    b = _Builder(hp)
    fn(b)
    return TensorLayout(tuple(b.entries), tuple(b.tensors))


# --------------------------------------------------------------------------- projectors


@dataclass(frozen=True)
class ProjectorHparams:
    """A vision projector's hyperparameters (llama.cpp ``tools/mtmd/clip.cpp``): the
    vision encoder (a ViT) and the projection into the language model's embeddings."""

    projector_type: str
    """``clip.projector_type`` (only ``mlp``, LLaVA 1.5's, has a layout here)."""
    image_size: int
    """Pixels per side the image is resized to (``clip.vision.image_size``)."""
    patch_size: int
    n_embd: int
    """The encoder's width."""
    n_ff: int
    n_layer: int
    n_head: int
    n_embd_text: int
    """The projection's output: the language model's ``n_embd``."""
    eps: float = 1e-5
    image_mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    image_std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

    @property
    def image_tokens(self) -> int:
        """Tokens one image takes in the language model's context (one per patch)."""
        return (self.image_size // self.patch_size) ** 2


def _projector_mlp(hp: ProjectorHparams) -> TensorLayout:
    """LLaVA 1.5's projector (``mlp``): CLIP ViT with a class token, learned positions and
    a pre-norm, then two linear layers (GELU between) into the text embeddings. llama.cpp
    feeds the projection the second-to-last layer's output (the last layer is loaded)."""
    if hp.image_size % hp.patch_size or hp.n_embd % hp.n_head:
        raise ValueError("image_size must be a multiple of patch_size, n_embd of n_head")
    v = "clip.vision."
    entries = [
        MetaEntry.of("clip.has_vision_encoder", True),
        MetaEntry.of("clip.has_llava_projector", True),
        MetaEntry.of("clip.projector_type", hp.projector_type),
        MetaEntry.of("clip.use_gelu", False),
        MetaEntry.of(v + "image_size", hp.image_size),
        MetaEntry.of(v + "patch_size", hp.patch_size),
        MetaEntry.of(v + "embedding_length", hp.n_embd),
        MetaEntry.of(v + "feed_forward_length", hp.n_ff),
        MetaEntry.of(v + "projection_dim", hp.n_embd_text),
        MetaEntry.of(v + "block_count", hp.n_layer),
        MetaEntry.of(v + "attention.head_count", hp.n_head),
        MetaEntry.of(v + "attention.layer_norm_epsilon", float(hp.eps)),
        MetaEntry.of(v + "image_mean", [float(x) for x in hp.image_mean]),
        MetaEntry.of(v + "image_std", [float(x) for x in hp.image_std]),
    ]
    n, n_pos = hp.n_embd, hp.image_tokens + 1  # the class token
    t = [
        TensorSpec("v.class_embd", (n,)),
        TensorSpec("v.patch_embd.weight", (hp.patch_size, hp.patch_size, 3, n)),
        TensorSpec("v.position_embd.weight", (n, n_pos)),
        TensorSpec("v.pre_ln.weight", (n,)),
        TensorSpec("v.pre_ln.bias", (n,)),
    ]
    for i in range(hp.n_layer):
        p = f"v.blk.{i}."
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            t += [TensorSpec(p + name + ".weight", (n, n)), TensorSpec(p + name + ".bias", (n,))]
        t += [TensorSpec(p + "ln1.weight", (n,)), TensorSpec(p + "ln1.bias", (n,))]
        t += [
            TensorSpec(p + "ffn_up.weight", (n, hp.n_ff)),
            TensorSpec(p + "ffn_up.bias", (hp.n_ff,)),
        ]
        t += [
            TensorSpec(p + "ffn_down.weight", (hp.n_ff, n)),
            TensorSpec(p + "ffn_down.bias", (n,)),
        ]
        t += [TensorSpec(p + "ln2.weight", (n,)), TensorSpec(p + "ln2.bias", (n,))]
    out = hp.n_embd_text
    t += [
        TensorSpec("mm.0.weight", (n, out)),
        TensorSpec("mm.0.bias", (out,)),
        TensorSpec("mm.2.weight", (out, out)),
        TensorSpec("mm.2.bias", (out,)),
    ]
    return TensorLayout(tuple(entries), tuple(t))


PROJECTOR_LAYOUTS: dict[str, Callable[[ProjectorHparams], TensorLayout]] = {
    "mlp": _projector_mlp,
}
"""Projector type -> its layout function."""


def projector_layout(hp: ProjectorHparams) -> TensorLayout:
    """The ``clip.*`` keys and the tensors of a projector (``general.*`` is the caller's).

    Raises:
        ValueError: a projector type without a layout, or inconsistent sizes.
    """
    fn = PROJECTOR_LAYOUTS.get(hp.projector_type)
    if fn is None:
        known = ", ".join(PROJECTOR_LAYOUTS)
        raise ValueError(f"no layout for projector type {hp.projector_type!r}; known: {known}")
    return fn(hp)
