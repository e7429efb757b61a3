"""Memory a model needs, from its GGUF header alone: weights, KV cache, recurrent state.

The rules are llama.cpp's (src/llama-context.cpp, llama-model.cpp ``create_memory``,
llama-kv-cache.cpp, llama-kv-cache-iswa.cpp, llama-memory-recurrent.cpp,
llama-hparams.cpp), reproduced so that the planned bytes equal the buffers llama.cpp
allocates when it creates a context:

- The requested context is padded to a multiple of 256; with ``n_seq`` sequences in
  separate streams each stream holds ``pad256(n_ctx / n_seq)`` cells.
- Full-attention layers hold one K and one V row per cell: ``head_dim x n_head_kv`` of
  that layer (per-layer head counts and the separate sliding-window head sizes count).
- Sliding-window layers hold ``pad256(min(n_ctx_seq, window + n_ubatch))`` cells, or as
  many as full layers with ``swa_full``.
- Layers that reuse another layer's KV (Gemma 3n / Gemma 4 ``shared_kv_layers``) own none.
- Without flash attention the V cache is stored transposed and every layer's V row is
  padded to the widest V row in the model; with flash attention it is not.
- MLA models (``key_length_mla`` present) cache only the compressed K row, no V.
- Recurrent layers (Mamba, Qwen 3.5 / Qwen3-Next Gated DeltaNet) hold a fixed f32 conv
  and SSM state per sequence that does not grow with the context.
- Quantized KV types are stored in blocks of 32 (q8_0: 34 bytes, q4_0: 18 bytes; the
  types and their block sizes are :data:`workbench.gguf.KV_CACHE_TYPES`); a quantized V
  cache needs flash attention.
- A vision model's projector (``mmproj``) is loaded beside it (its tensor bytes), and
  its images take context cells like any token: the context is planned for the text
  plus the image tokens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import ModelError
from workbench.gguf import ModelInfo
from workbench.gguf.kv_cache import is_quantized, kv_block
from workbench.models.ref import ModelRef

if TYPE_CHECKING:
    import polars as pl

GIB = 1024**3
MIB = 1024**2
CTX_PAD = 256
"""llama.cpp pads n_ctx, n_ctx_seq and the SWA cache to multiples of this."""


class UnsupportedArch(ModelError):
    """The planner does not know this architecture's memory layout (one-line message)."""


# Architectures whose every layer is plain attention (no sliding window, no recurrence);
# checked against their llama.cpp loaders.
_PLAIN_ARCHS = frozenset(
    {
        "llama", "mistral3", "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen3moe", "qwen3vl",
        "qwen3vlmoe", "glm4", "glm4moe", "deepseek", "deepseek2", "granite", "granitemoe",
        "olmo", "olmoe", "starcoder2", "stablelm", "internlm2", "minicpm", "phi2", "gpt2",
        "command-r", "smollm3", "ernie4_5", "ernie4_5-moe", "seed_oss", "baichuan", "gemma",
        "falcon", "gptneox", "bloom", "mpt", "refact", "starcoder", "qwen", "dbrx", "arcee",
        "apertus", "hunyuan-moe", "hunyuan-dense", "exaone", "dots1", "bailingmoe",
        "bailingmoe2", "grovemoe", "minimax-m2", "nemotron", "orion", "xverse", "plm",
    }
)  # fmt: skip

# name -> (default pattern, dense_first, default window or None if the key is required,
#          SWA only when a positive window is present)
_SWA_ARCHS: dict[str, tuple[int, bool, int | None, bool]] = {
    "gemma2": (2, False, 4096, False),
    "gemma3": (6, False, 0, True),
    "gemma3n": (5, False, None, False),
    "gemma4": (0, False, None, False),  # bool array only
    "cohere2": (4, False, None, False),
    "gpt-oss": (2, False, None, False),
}

# Hybrid attention + Gated DeltaNet: recurrent unless (i + 1) % interval == 0.
_GDN_ARCHS = frozenset({"qwen35", "qwen35moe", "qwen3next"})
_PURE_RECURRENT = frozenset({"mamba", "mamba2"})

SUPPORTED_ARCHS: frozenset[str] = _PLAIN_ARCHS | set(_SWA_ARCHS) | _GDN_ARCHS | _PURE_RECURRENT
"""Architectures :func:`plan` can lay out."""


@dataclass(frozen=True)
class LayerKV:
    """What one layer of the model keeps in memory."""

    index: int
    kind: str
    """full, swa, shared (reuses another layer's KV), recurrent, or none (filtered)."""
    k_row: int
    """Elements per cached token for K (head_dim x n_head_kv)."""
    v_row: int
    """Elements per cached token for V before padding (0 for MLA)."""


@dataclass(frozen=True)
class Layout:
    """An architecture's memory layout, derived once from the header."""

    arch: str
    layers: tuple[LayerKV, ...]
    n_swa: int
    """Sliding window in tokens (0 = none)."""
    v_row_max: int
    """Widest V row over all layers: the padded V row without flash attention."""
    is_mla: bool
    n_embd_r: int
    """Recurrent conv-state elements per layer and sequence (f32)."""
    n_embd_s: int
    """Recurrent SSM-state elements per layer and sequence (f32)."""
    n_ctx_train: int | None


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes llama.cpp allocates for one model at one context length (CPU or GPU alike;
    compute buffers, which depend on the backend and batch size, are not included)."""

    model: str
    arch: str
    ctx: int
    """Context length asked for (tokens)."""
    n_ctx: int
    """Cells in each full-attention stream after llama.cpp's padding."""
    n_ctx_swa: int
    """Cells in each sliding-window stream (0 when the model has no SWA layers)."""
    kv_type: str
    swa_full: bool
    flash_attn: bool
    """Whether the KV layout assumes flash attention (None = auto resolves to True)."""
    n_seq: int
    weights_bytes: int
    """Sum of the tensor bytes in the file (what llama.cpp maps or loads)."""
    kv_bytes: int
    """K and V cache bytes of all attention layers."""
    k_bytes: int
    v_bytes: int
    kv_bytes_swa: int
    """The part of kv_bytes held by sliding-window layers (llama.cpp's second cache)."""
    state_bytes: int
    """Recurrent state bytes (0 for pure-attention models); independent of ctx."""
    kv_bytes_per_token: int
    """Bytes each extra context token adds (per stream) once the sliding windows are full."""
    n_layers_full: int
    n_layers_swa: int
    n_layers_shared: int
    n_layers_recurrent: int
    projector_bytes: int = 0
    """The vision projector's tensor bytes (0: none planned)."""
    image_tokens: int = 0
    """Context tokens planned for images, beyond ``ctx`` (their KV is in ``kv_bytes``)."""

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.state_bytes + self.projector_bytes

    def as_row(self) -> dict[str, Any]:
        """A flat dict for frames and JSON."""
        return {**asdict(self), "total_bytes": self.total_bytes}


def _per_layer(value: Any, n: int, default: int = 0) -> list[int]:
    if value is None:
        return [default] * n
    if isinstance(value, list):
        if len(value) != n:
            raise UnsupportedArch(f"per-layer array has {len(value)} entries for {n} layers")
        return [int(v) for v in value]
    return [int(value)] * n


def layout(info: ModelInfo) -> Layout:
    """Per-layer cache shapes, the way llama.cpp's loader derives them from the header.

    Raises:
        UnsupportedArch: an architecture the planner does not know, or missing keys.
    """
    arch = info.arch
    if arch not in SUPPORTED_ARCHS:
        raise UnsupportedArch(f"memory planner does not know architecture {arch!r}")
    k = info.key
    n_all = k("block_count")
    n_embd = k("embedding_length")
    if not n_all or n_embd is None:
        raise UnsupportedArch(f"{arch} header lacks block_count or embedding_length")
    n_all = int(n_all)
    n_nextn = int(k("nextn_predict_layers") or 0)
    n_layer = n_all - n_nextn

    n_head = _per_layer(k("attention.head_count"), n_all)
    kv_raw = k("attention.head_count_kv")
    n_head_kv = n_head if kv_raw is None else _per_layer(kv_raw, n_all)

    if n_head[0] > 0:
        hk_full = int(k("attention.key_length") or n_embd // n_head[0])
        hv_full = int(k("attention.value_length") or n_embd // n_head[0])
    else:
        hk_full = hv_full = 0
    hk_swa = int(k("attention.key_length_swa") or hk_full)
    hv_swa = int(k("attention.value_length_swa") or hv_full)
    is_mla = bool(k("attention.key_length_mla")) and bool(k("attention.value_length_mla"))

    # Sliding-window layers.
    is_swa = [False] * n_all
    n_swa = 0
    if arch in _SWA_ARCHS:
        pattern_default, dense_first, window_default, needs_window = _SWA_ARCHS[arch]
        window = k("attention.sliding_window")
        if window is None and window_default is None:
            raise UnsupportedArch(f"{arch} header lacks attention.sliding_window")
        n_swa = int(window if window is not None else window_default or 0)
        if not (needs_window and n_swa <= 0):
            pat = k("attention.sliding_window_pattern")
            if isinstance(pat, list):
                for i, v in enumerate(pat[:n_all]):
                    is_swa[i] = bool(v)
            elif arch == "gemma4":
                raise UnsupportedArch("gemma4 header lacks attention.sliding_window_pattern")
            else:
                n_pat = int(pat) if pat is not None else pattern_default
                for i in range(n_layer):
                    if dense_first:
                        is_swa[i] = n_pat == 0 or i % n_pat != 0
                    else:
                        is_swa[i] = n_pat == 0 or i % n_pat < n_pat - 1
        else:
            n_swa = 0
    if not any(is_swa):
        n_swa = 0

    # Layers that own KV (Gemma 3n / 4 reuse the last non-shared layers' caches).
    kv_from_start = n_all
    if arch == "gemma4":
        kv_from_start = n_all - int(k("attention.shared_kv_layers") or 0)
    elif arch == "gemma3n":
        kv_from_start = 20

    # Recurrent layers.
    is_recr = [False] * n_all
    if arch in _PURE_RECURRENT:
        is_recr = [True] * n_all
    elif arch in _GDN_ARCHS:
        arr = k("attention.recurrent_layers")
        if isinstance(arr, list):
            is_recr = [bool(v) for v in _per_layer(arr, n_all)]
        else:
            interval = int(k("full_attention_interval") or 4)
            is_recr = [i < n_layer and (i + 1) % interval != 0 for i in range(n_all)]

    layers = []
    v_row_max = 0
    for i in range(n_all):
        hk = hk_swa if is_swa[i] else hk_full
        hv = hv_swa if is_swa[i] else hv_full
        k_row, v_row = hk * n_head_kv[i], hv * n_head_kv[i]
        v_row_max = max(v_row_max, v_row)
        if is_recr[i]:
            kind = "recurrent"
        elif arch in _PURE_RECURRENT:
            kind = "none"
        elif i >= kv_from_start:
            kind = "shared"
        elif n_nextn > 0 and n_layer > 0 and i >= n_layer:
            kind = "none"  # MTP / NextN layers are not cached by the main context
        else:
            kind = "swa" if is_swa[i] else "full"
        layers.append(LayerKV(i, kind, k_row, 0 if is_mla else v_row))

    n_embd_r = n_embd_s = 0
    if any(is_recr):
        d_conv = int(k("ssm.conv_kernel") or 0)
        d_inner = int(k("ssm.inner_size") or 0)
        d_state = int(k("ssm.state_size") or 0)
        n_group = int(k("ssm.group_count") or 0)
        if not (d_inner and d_state):
            raise UnsupportedArch(f"{arch} header lacks ssm.inner_size or ssm.state_size")
        n_embd_r = max(d_conv - 1, 0) * (d_inner + 2 * n_group * d_state)
        n_embd_s = d_state * d_inner

    n_ctx_train = k("context_length")
    return Layout(
        arch=arch,
        layers=tuple(layers),
        n_swa=n_swa,
        v_row_max=v_row_max,
        is_mla=is_mla,
        n_embd_r=n_embd_r,
        n_embd_s=n_embd_s,
        n_ctx_train=int(n_ctx_train) if n_ctx_train else None,
    )


def _row_bytes(kv_type: str, n: int) -> int:
    block, size = kv_block(kv_type)
    if n % block:
        raise ValueError(f"{kv_type} KV cache needs rows divisible by {block}, got {n}")
    return n // block * size


def _pad(n: int, to: int = CTX_PAD) -> int:
    return (n + to - 1) // to * to


def weights_bytes(info: ModelInfo) -> int:
    """Sum of tensor bytes in the file."""
    return sum(t.n_bytes for t in info.tensors)


def plan(
    info: ModelInfo,
    ctx: int,
    *,
    kv_type: str = "f16",
    kv_type_v: str | None = None,
    swa_full: bool = False,
    flash_attn: bool | None = None,
    n_seq: int = 1,
    n_ubatch: int = 512,
    kv_unified: bool = False,
    projector: ModelInfo | None = None,
    image_tokens: int = 0,
) -> MemoryPlan:
    """Memory for ``info`` at context length ``ctx``, as llama.cpp allocates it.

    Args:
        info: the model's header (:func:`workbench.gguf.read_model_info`).
        ctx: context length in tokens (0 = the model's trained length, as llama.cpp does).
        kv_type: cache type for K (and V unless ``kv_type_v`` is given): f16, q8_0, q4_0...
        kv_type_v: cache type for V when it differs from K.
        swa_full: allocate full-size sliding-window caches (llama.cpp's own default is
            True; workbench creates contexts with False).
        flash_attn: True, False, or None for llama.cpp's "auto", which lays the cache out
            as for flash attention.
        n_seq: parallel sequences (n_seq_max).
        n_ubatch: physical batch size; the SWA cache keeps window + n_ubatch cells.
            llama.cpp caps it at the context asked for (and at n_batch).
        kv_unified: one KV stream shared by all sequences.
        projector: a vision model's projector header (its weights are added).
        image_tokens: tokens the images take (``models.projectors.image_tokens`` per
            image): the context holds ``ctx`` text tokens plus these.

    Raises:
        UnsupportedArch: architecture unknown to the planner.
        ValueError: a quantized V cache without flash attention, or a bad argument.
    """
    lay = layout(info)
    type_v = kv_type_v or kv_type
    for t in (kv_type, type_v):
        kv_block(t)  # raises UnknownKVCacheType, naming the types llama.cpp accepts
    fa = True if flash_attn is None else bool(flash_attn)
    if is_quantized(type_v) and not fa:
        raise ValueError(f"a {type_v} V cache needs flash attention (flash_attn on or auto)")
    if n_seq < 1:
        raise ValueError("n_seq must be at least 1")
    if ctx <= 0:
        if not lay.n_ctx_train:
            raise ValueError("ctx=0 needs the model's context_length")
        ctx = lay.n_ctx_train
    if image_tokens < 0:
        raise ValueError("image_tokens must not be negative")
    ctx_cells = ctx + image_tokens  # what the context is created with

    n_ctx = _pad(ctx_cells)
    if kv_unified:
        n_ctx_seq, n_stream = n_ctx, 1
    else:
        n_ctx_seq, n_stream = _pad(n_ctx // n_seq), n_seq
    ubatch = min(n_ubatch, ctx_cells)
    n_swa_cells = 0
    if lay.n_swa:
        n_swa_cells = (
            n_ctx_seq
            if swa_full
            else _pad(min(n_ctx_seq, lay.n_swa * (n_seq if kv_unified else 1) + ubatch))
        )

    k_bytes = v_bytes = per_token = swa_bytes = 0
    counts = {"full": 0, "swa": 0, "shared": 0, "recurrent": 0}
    for layer in lay.layers:
        if layer.kind in counts:
            counts[layer.kind] += 1
        if layer.kind not in ("full", "swa"):
            continue
        cells = n_swa_cells if layer.kind == "swa" else n_ctx_seq
        v_row = 0 if lay.is_mla else (layer.v_row if fa else lay.v_row_max)
        k_row_b = _row_bytes(kv_type, layer.k_row)
        v_row_b = _row_bytes(type_v, v_row) if v_row else 0
        k_bytes += k_row_b * cells * n_stream
        v_bytes += v_row_b * cells * n_stream
        if layer.kind == "swa":
            swa_bytes += (k_row_b + v_row_b) * cells * n_stream
        if layer.kind == "full" or swa_full:
            per_token += k_row_b + v_row_b

    state = 0
    if counts["recurrent"]:
        rs_size = max(1, n_seq)
        state = counts["recurrent"] * (lay.n_embd_r + lay.n_embd_s) * 4 * rs_size

    return MemoryPlan(
        model=info.name,
        arch=lay.arch,
        ctx=ctx,
        n_ctx=n_ctx_seq,
        n_ctx_swa=n_swa_cells,
        kv_type=kv_type if type_v == kv_type else f"{kv_type}/{type_v}",
        swa_full=swa_full,
        flash_attn=fa,
        n_seq=n_seq,
        weights_bytes=weights_bytes(info),
        kv_bytes=k_bytes + v_bytes,
        k_bytes=k_bytes,
        v_bytes=v_bytes,
        kv_bytes_swa=swa_bytes,
        state_bytes=state,
        kv_bytes_per_token=per_token,
        n_layers_full=counts["full"],
        n_layers_swa=counts["swa"],
        n_layers_shared=counts["shared"],
        n_layers_recurrent=counts["recurrent"],
        projector_bytes=weights_bytes(projector) if projector is not None else 0,
        image_tokens=image_tokens,
    )


def contexts_within(n_ctx_train: int | None, ctxs: Sequence[int]) -> list[int]:
    """The context lengths of ``ctxs`` a model was trained for: those up to its trained
    context, plus the trained context itself when ``ctxs`` reach beyond it (all of them
    when the header gives none). ``workbench memory`` and the notebooks use it alike."""
    if not n_ctx_train:
        return list(ctxs)
    kept = [c for c in ctxs if c <= n_ctx_train]
    if any(c > n_ctx_train for c in ctxs) and n_ctx_train not in kept:
        kept.append(n_ctx_train)
    return kept


def _named(models: Iterable[ModelInfo | ModelRef]) -> Iterator[tuple[str, ModelInfo]]:
    """(name, header) pairs: a ModelRef is named by its registry name, a ModelInfo by its
    GGUF ``general.name``."""
    for m in models:
        if isinstance(m, ModelRef):
            yield m.name, m.info()
        else:
            yield m.name, m


def plan_frame(
    models: Iterable[ModelInfo | ModelRef],
    ctxs: Sequence[int],
    *,
    within_trained: bool = False,
    **kw: Any,
) -> pl.DataFrame:
    """One row per (model, ctx): :class:`MemoryPlan` fields plus total_bytes.

    Args:
        models: registry models (rows named by registry name) or GGUF headers.
        ctxs: context lengths.
        within_trained: plan each model only at the lengths it was trained for
            (:func:`contexts_within`), as ``workbench memory`` does.
        **kw: passed to :func:`plan` (kv_type, swa_full, flash_attn, ...).

    Models whose architecture the planner does not know are skipped; use :func:`plan`
    directly to see the error.
    """
    import polars as pl

    rows = []
    for name, info in _named(models):
        lengths = contexts_within(info.n_ctx_train, ctxs) if within_trained else ctxs
        for c in lengths:
            try:
                rows.append({**plan(info, c, **kw).as_row(), "model": name})
            except UnsupportedArch:
                break
    return pl.DataFrame(rows)


def max_context(
    info: ModelInfo,
    budget_bytes: int | float,
    *,
    step: int = CTX_PAD,
    limit: int | None = None,
    **kw: Any,
) -> int:
    """The largest context (a multiple of ``step``, at most the trained context) whose
    total bytes fit in ``budget_bytes``; 0 if not even ``step`` tokens fit.

    Args:
        info: the model.
        budget_bytes: memory available for weights, KV cache and state.
        step: granularity of the answer (llama.cpp pads to 256 anyway).
        limit: cap instead of the trained context (required when the header has none).
        **kw: passed to :func:`plan` (kv_type, swa_full, flash_attn, n_seq, ...).
    """
    cap = limit or layout(info).n_ctx_train
    if not cap:
        raise ValueError(f"{info.name}: no context_length in the header; pass limit=")
    hi = cap // step
    if hi == 0 or plan(info, step, **kw).total_bytes > budget_bytes:
        return 0
    lo = 1  # total grows monotonically with ctx: binary search on multiples of step
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if plan(info, mid * step, **kw).total_bytes <= budget_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo * step


def format_bytes(n: int | float) -> str:
    """1536 -> '1.50 KiB'; binary units, as llama.cpp logs them."""
    if n < 1024:
        return f"{int(n)} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    e = min(int(math.log(n, 1024)), len(units))
    return f"{n / 1024**e:.2f} {units[e - 1]}"


def context_table(
    models: Iterable[ModelInfo | ModelRef], budgets_gib: Sequence[float], **kw: Any
) -> pl.DataFrame:
    """The largest context that fits each model in each budget: one row per (model, budget).

    Args:
        models: registry models (rows named by registry name) or GGUF headers.
        budgets_gib: memory budgets in GiB (weights + KV cache + recurrent state).
        **kw: passed to :func:`plan` (kv_type, swa_full, flash_attn, ...).
    """
    import polars as pl

    rows = []
    for name, info in _named(models):
        for gib in budgets_gib:
            try:
                ctx = max_context(info, gib * 2**30, **kw)
            except (UnsupportedArch, ValueError):
                ctx = None
            rows.append({"model": name, "budget_gib": float(gib), "max_ctx": ctx})
    return pl.DataFrame(
        rows, schema={"model": pl.String, "budget_gib": pl.Float64, "max_ctx": pl.Int64}
    )
