"""llama-quantize's type mix: which ggml type each tensor of a twin gets for a preset.

:func:`assign_types` follows ``src/llama-quant.cpp``: K-quants where the row length
allows, the 32-element fallbacks where it does not, Q6_K for the output matrix, more bits
for some attn_v and ffn_down layers.
"""

from __future__ import annotations

from collections.abc import Sequence

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from workbench.models.layouts import TensorSpec

# Presets: name -> (default ggml type name, llama_ftype value).
PRESETS: dict[str, tuple[str, LlamaFileType]] = {
    "Q4_0": ("Q4_0", LlamaFileType.MOSTLY_Q4_0),
    "Q8_0": ("Q8_0", LlamaFileType.MOSTLY_Q8_0),
    "Q4_K_S": ("Q4_K", LlamaFileType.MOSTLY_Q4_K_S),
    "Q4_K_M": ("Q4_K", LlamaFileType.MOSTLY_Q4_K_M),
    "Q5_K_S": ("Q5_K", LlamaFileType.MOSTLY_Q5_K_S),
    "Q5_K_M": ("Q5_K", LlamaFileType.MOSTLY_Q5_K_M),
    "Q6_K": ("Q6_K", LlamaFileType.MOSTLY_Q6_K),
    "F16": ("F16", LlamaFileType.MOSTLY_F16),
    "BF16": ("BF16", LlamaFileType.MOSTLY_BF16),
}
"""Quantization presets :func:`assign_types` knows (llama-quantize's names): the default
ggml type of the preset, and its ``general.file_type``."""

_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "Q2_K": "Q4_0", "Q3_K": "Q4_0"}
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


def _block(t: str) -> int:
    return GGML_QUANT_SIZES[GGMLQuantizationType[t]][0]


def _fallback(t: str, ne0: int) -> str:
    if ne0 % _block(t) == 0:
        return t
    t = _FALLBACK.get(t, t)
    return t if ne0 % _block(t) == 0 else "F16"


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
            new = "Q8_0" if ne0 % _block(default) else (default if default == "Q8_0" else "Q6_K")
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
