"""The model families workbench knows by name: one entry per model, used by ``pull``,
``twin``, the registry's ``twin:NAME`` and the tests.

An entry names the hub repository people compare (and the quantizations it publishes)
and, where the model's hyperparameters are published (see
``shared/reference/published-hparams.md``), its :class:`Hparams`: a twin is then built
from the configuration alone (laid out by :func:`workbench.models.layouts.layout`),
without the hub. An entry without
them is twinned from its hub file's header (Range requests, never the weights).

Adding a model is one entry here; a new architecture also needs one layout function in
:mod:`workbench.models.layouts`. The module imports nothing heavy, so listings are fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TWIN_PREFIX = "twin:"
"""How a catalog twin is named wherever a model is (``twin:gemma-4-e4b``)."""
DEPRECATED_PREFIX = "catalog:"
"""The older spelling of :data:`TWIN_PREFIX`; still resolves."""


@dataclass(frozen=True)
class Hparams:
    """A model's hyperparameters: the fields its GGUF file's keys and tensor shapes
    depend on (published configurations, or a fixture's toy sizes)."""

    arch: str
    """GGUF ``general.architecture``."""
    n_vocab: int
    n_ctx_train: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int | tuple[int, ...]
    """KV heads, one value or one per layer."""
    head_dim: int
    """Head size (of the full-attention layers where sliding ones differ)."""
    n_ff: int | tuple[int, ...]
    """Dense feed-forward width, one value or one per layer (0: no dense FFN)."""
    tied: bool
    """Output matrix shared with the token embeddings."""
    rope_base: float
    rms_eps: float = 1e-6
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Architecture-specific fields (see the ``_layout_<arch>`` functions)."""


@dataclass(frozen=True)
class CatalogEntry:
    """One model: where its GGUF files are, and its published configuration."""

    name: str
    """Short name (``gemma-4-e4b``), accepted by ``workbench pull`` and as ``twin:NAME``."""
    family: str
    """Model family (gemma-4, qwen-3.5, glm-4)."""
    title: str
    """Human name; a twin's ``general.name`` is this plus " (twin)"."""
    repo: str
    """Hugging Face repository id holding the GGUF files."""
    params: str
    """Parameter count as the model card states it (total / active for MoE)."""
    quants: tuple[str, ...]
    """Quantizations the repository publishes (the usual ones; the repo listing decides)."""
    note: str = ""
    """One line on what the model is."""
    hparams: Hparams | None = None
    """Published hyperparameters (None: a twin needs the hub file's header)."""


def _gemma4(
    *, n_layer: int, n_embd: int, n_ff: int | tuple[int, ...], n_head: int, kv_swa: int,
    kv_full: int, window: int, period: int, shared: int, ple: int, ctx: int,
    n_expert: int = 0, n_expert_used: int = 0, n_ff_exp: int = 0, k_eq_v: bool = False,
) -> Hparams:  # fmt: skip
    swa = tuple(i % period != period - 1 for i in range(n_layer))
    return Hparams(
        "gemma4", 262144, ctx, n_embd, n_layer, n_head,
        tuple(kv_swa if s else kv_full for s in swa), 512, n_ff, True, 1_000_000.0,
        extra={"swa": swa, "head_dim_swa": 256, "window": window, "shared_kv": shared,
               "ple": ple, "n_expert": n_expert, "n_expert_used": n_expert_used,
               "n_ff_exp": n_ff_exp, "k_eq_v": k_eq_v},
    )  # fmt: skip


def _qwen35(
    *, n_layer: int, n_embd: int, n_ff: int, n_head: int, n_head_kv: int, v_heads: int,
    tied: bool, n_expert: int = 0, n_expert_used: int = 0, n_ff_exp: int = 0,
    n_ff_shexp: int = 0,
) -> Hparams:  # fmt: skip
    return Hparams(
        "qwen35moe" if n_expert else "qwen35", 248320, 262144, n_embd, n_layer, n_head,
        n_head_kv, 256, n_ff, tied, 10_000_000.0,
        extra={"v_heads": v_heads, "n_expert": n_expert, "n_expert_used": n_expert_used,
               "n_ff_exp": n_ff_exp, "n_ff_shexp": n_ff_shexp},
    )  # fmt: skip


_UNSLOTH_QUANTS = (
    "UD-IQ2_XXS", "UD-Q2_K_XL", "UD-Q3_K_XL", "IQ4_XS", "Q4_K_S", "Q4_K_M", "UD-Q4_K_XL",
    "Q5_K_M", "UD-Q5_K_XL", "Q6_K", "Q8_0", "BF16",
)  # fmt: skip
_BARTOWSKI_QUANTS = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")

_GEMMA_4_E4B = _gemma4(
    n_layer=42, n_embd=2560, n_ff=10240, n_head=8, kv_swa=2, kv_full=2, window=512, period=6,
    shared=18, ple=256, ctx=131072,
)  # fmt: skip

CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        "gemma-4-e2b", "gemma-4", "Gemma 4 E2B", "unsloth/gemma-4-E2B-it-GGUF",
        "5.1B (2.3B effective)", _UNSLOTH_QUANTS,
        "Gemma 4 E2B instruct, phone/laptop class: per-layer embeddings, the last 20 layers "
        "share KV (with a double-wide MLP)",
        _gemma4(n_layer=35, n_embd=1536, n_ff=tuple(6144 if i < 15 else 12288 for i in range(35)),
                n_head=8, kv_swa=1, kv_full=1, window=512, period=5, shared=20, ple=256,
                ctx=131072),
    ),
    CatalogEntry(
        "gemma-4-e4b", "gemma-4", "Gemma 4 E4B", "unsloth/gemma-4-E4B-it-GGUF",
        "8B (4.5B effective)", _UNSLOTH_QUANTS,
        "Gemma 4 E4B instruct: per-layer embeddings, the last 18 layers share KV", _GEMMA_4_E4B,
    ),
    CatalogEntry(
        "gemma-4-26b-a4b", "gemma-4", "Gemma 4 26B A4B", "unsloth/gemma-4-26B-A4B-it-GGUF",
        "26B total / 4B active", _UNSLOTH_QUANTS,
        "Gemma 4 mixture-of-experts: 128 experts top-8 beside a dense MLP",
        # Expert rows of 704 are no multiple of 256: llama-quantize gives them 32-element types.
        _gemma4(n_layer=30, n_embd=2816, n_ff=2112, n_head=16, kv_swa=8, kv_full=2, window=1024,
                period=6, shared=0, ple=0, ctx=262144, n_expert=128, n_expert_used=8,
                n_ff_exp=704, k_eq_v=True),
    ),
    CatalogEntry(
        "gemma-4-31b", "gemma-4", "Gemma 4 31B", "unsloth/gemma-4-31B-it-GGUF", "31B",
        _UNSLOTH_QUANTS, "Gemma 4 dense flagship; K = V on global layers",
        _gemma4(n_layer=60, n_embd=5376, n_ff=21504, n_head=32, kv_swa=16, kv_full=4,
                window=1024, period=6, shared=0, ple=0, ctx=262144, k_eq_v=True),
    ),
    CatalogEntry(
        "gemma-4-e4b-ggml", "gemma-4", "Gemma 4 E4B", "ggml-org/gemma-4-E4B-it-GGUF",
        "8B (4.5B effective)", ("Q4_K_M", "Q8_0"),
        "Gemma 4 E4B as converted by the llama.cpp maintainers", _GEMMA_4_E4B,
    ),
    CatalogEntry(
        "qwen3.5-0.8b", "qwen-3.5", "Qwen3.5 0.8B", "unsloth/Qwen3.5-0.8B-GGUF", "0.8B",
        _UNSLOTH_QUANTS, "Qwen 3.5 hybrid (Gated DeltaNet + attention), smallest",
        _qwen35(n_layer=24, n_embd=1024, n_ff=3584, n_head=8, n_head_kv=2, v_heads=16,
                tied=True),
    ),
    CatalogEntry(
        "qwen3.5-2b", "qwen-3.5", "Qwen3.5 2B", "unsloth/Qwen3.5-2B-GGUF", "2B",
        _UNSLOTH_QUANTS, "Qwen 3.5 hybrid reasoning model (configuration from one source)",
        _qwen35(n_layer=24, n_embd=2048, n_ff=6144, n_head=8, n_head_kv=2, v_heads=16,
                tied=True),
    ),
    CatalogEntry(
        "qwen3.5-4b", "qwen-3.5", "Qwen3.5 4B", "unsloth/Qwen3.5-4B-GGUF", "4B",
        _UNSLOTH_QUANTS, "Qwen 3.5 hybrid reasoning model",
        _qwen35(n_layer=32, n_embd=2560, n_ff=9216, n_head=16, n_head_kv=4, v_heads=32,
                tied=True),
    ),
    CatalogEntry(
        "qwen3.5-9b", "qwen-3.5", "Qwen3.5 9B", "unsloth/Qwen3.5-9B-GGUF", "9B",
        _UNSLOTH_QUANTS, "Qwen 3.5 hybrid reasoning model",
        _qwen35(n_layer=32, n_embd=4096, n_ff=12288, n_head=16, n_head_kv=4, v_heads=32,
                tied=False),
    ),
    CatalogEntry(
        "qwen3.5-27b", "qwen-3.5", "Qwen3.5 27B", "unsloth/Qwen3.5-27B-GGUF", "27B",
        _UNSLOTH_QUANTS, "Qwen 3.5 dense",
        _qwen35(n_layer=64, n_embd=5120, n_ff=17408, n_head=24, n_head_kv=4, v_heads=48,
                tied=False),
    ),
    CatalogEntry(
        "qwen3.5-35b-a3b", "qwen-3.5", "Qwen3.5 35B A3B", "unsloth/Qwen3.5-35B-A3B-GGUF",
        "35B total / 3B active", _UNSLOTH_QUANTS,
        "Qwen 3.5 mixture-of-experts: 256 experts top-8 + a shared expert",
        _qwen35(n_layer=40, n_embd=2048, n_ff=0, n_head=16, n_head_kv=2, v_heads=32,
                tied=False, n_expert=256, n_expert_used=8, n_ff_exp=512, n_ff_shexp=512),
    ),
    CatalogEntry(
        "qwen3.5-122b-a10b", "qwen-3.5", "Qwen3.5 122B A10B", "unsloth/Qwen3.5-122B-A10B-GGUF",
        "122B total / 10B active", _UNSLOTH_QUANTS, "Qwen 3.5 large MoE (split files)",
    ),
    CatalogEntry(
        "glm-4.7-flash", "glm-4", "GLM-4.7-Flash", "unsloth/GLM-4.7-Flash-GGUF",
        "30B total / 3B active", _UNSLOTH_QUANTS,
        "GLM 4.7 Flash MoE: MLA (llama.cpp runs it as deepseek2), 64 experts top-4 + shared",
        Hparams("deepseek2", 154880, 202752, 2048, 47, 20, 1, 576, 10240, False, 1_000_000.0,
                1e-5, {"q_lora": 768, "kv_lora": 512, "qk_nope": 192, "qk_rope": 64,
                       "v_head": 256, "n_expert": 64, "n_expert_used": 4, "n_ff_exp": 1536,
                       "n_dense": 1, "scale": 1.8}),
    ),
    CatalogEntry(
        "glm-4.5-air", "glm-4", "GLM-4.5-Air", "unsloth/GLM-4.5-Air-GGUF",
        "106B total / 12B active", _UNSLOTH_QUANTS,
        "GLM 4.5 Air MoE (split files): 128 experts top-8 + shared, first layer dense",
        Hparams("glm4moe", 151552, 131072, 4096, 46, 96, 8, 128, 10944, False, 1_000_000.0,
                1e-5, {"rope_dim": 64, "n_expert": 128, "n_expert_used": 8, "n_ff_exp": 1408,
                       "n_dense": 1}),
    ),
    CatalogEntry(
        "glm-4.6", "glm-4", "GLM-4.6", "unsloth/GLM-4.6-GGUF", "355B total / 32B active",
        _UNSLOTH_QUANTS, "GLM 4.6 MoE (split files)",
    ),
    CatalogEntry(
        "glm-4-9b", "glm-4", "GLM-4-9B-0414", "bartowski/THUDM_GLM-4-9B-0414-GGUF", "9B",
        _BARTOWSKI_QUANTS, "GLM 4 0414 dense",
        Hparams("glm4", 151552, 32768, 4096, 40, 32, 2, 128, 13696, False, 10000.0, 1e-5,
                {"rope_dim": 64}),
    ),
    CatalogEntry(
        "glm-4-32b", "glm-4", "GLM-4-32B-0414", "bartowski/THUDM_GLM-4-32B-0414-GGUF", "32B",
        _BARTOWSKI_QUANTS, "GLM 4 0414 dense, large",
        Hparams("glm4", 151552, 32768, 6144, 61, 48, 2, 128, 23040, False, 10000.0, 1e-5,
                {"rope_dim": 64}),
    ),
)  # fmt: skip
"""Every model known by name; any other hub repository id works too."""


def strip_prefix(name: str) -> str:
    """``twin:NAME`` or the deprecated ``catalog:NAME`` -> ``NAME``."""
    return name.removeprefix(TWIN_PREFIX).removeprefix(DEPRECATED_PREFIX)


def catalog_entry(name: str) -> CatalogEntry | None:
    """The entry called ``name`` (case-insensitive; ``twin:`` / ``catalog:`` allowed), or
    None."""
    key = strip_prefix(name.strip()).lower()
    return next((e for e in CATALOG if e.name == key), None)
