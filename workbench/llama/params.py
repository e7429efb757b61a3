"""Settings as llama.cpp takes them.

The parent side turns workbench's settings into plain numbers (:class:`LoadParams`,
:func:`kv_type_id`); the child side hands them to llama.cpp (:func:`flash_attn_arg` for
``Llama(...)``, :func:`context_params` for the raw API), so that "auto" flash attention
and the KV-cache type ids mean the same in every worker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from workbench.backends.base import GenerationConfig
from workbench.gguf import ModelInfo, kv_cache_type
from workbench.host import physical_cores


def kv_type_id(name: str) -> int:
    """llama.cpp's ggml type id of a KV-cache type (``f16`` -> 1, ``q8_0`` -> 8), from the
    one KV-cache table (:data:`workbench.gguf.KV_CACHE_TYPES`).

    Raises:
        UnknownKVCacheType: a type llama.cpp does not accept for the cache.
    """
    return int(kv_cache_type(name))


@dataclass(frozen=True)
class LoadParams:
    """What a generation worker loads a model with. Two requests with equal LoadParams
    share the loaded model; anything per request (sampling, seed) is not here."""

    n_ctx: int
    """Context to allocate: the requested one, capped at the model's trained length."""
    n_threads: int
    """Threads for generation and prompt processing."""
    n_gpu_layers: int
    n_batch: int
    n_ubatch: int
    flash_attn: bool | None
    """True, False, or None for llama.cpp's auto."""
    swa_full: bool
    type_k: int
    """ggml type id of the K cache."""
    type_v: int
    """ggml type id of the V cache."""
    mmproj: str | None = None
    """The vision projector loaded with the model (None: text only)."""
    image_tokens: int | None = None
    """The image token budget the projector is loaded with (None: its default; only
    set with a projector, so a text model never reloads for it)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_params(config: GenerationConfig, info: ModelInfo, mmproj: str | None = None) -> LoadParams:
    """The load parameters of ``config`` for the model ``info`` describes (with its
    vision projector ``mmproj``, if any).

    Raises:
        UnknownKVCacheType: an unknown KV-cache type.
    """
    n_ctx = config.n_ctx
    if info.n_ctx_train:
        n_ctx = min(n_ctx, int(info.n_ctx_train))
    return LoadParams(
        n_ctx=n_ctx,
        n_threads=config.n_threads or physical_cores(),
        n_gpu_layers=config.n_gpu_layers,
        n_batch=config.n_batch,
        n_ubatch=config.n_ubatch,
        flash_attn=config.flash_attn,
        swa_full=config.swa_full,
        type_k=kv_type_id(config.type_k),
        type_v=kv_type_id(config.type_v),
        mmproj=mmproj,
        image_tokens=config.image_tokens if mmproj else None,
    )


def llama_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """``Llama(...)`` keyword arguments for :meth:`LoadParams.as_dict` (flash attention
    apart: see :func:`flash_attn_arg`)."""
    return {
        "n_ctx": params["n_ctx"],
        "n_threads": params["n_threads"],
        "n_threads_batch": params["n_threads"],
        "n_gpu_layers": params["n_gpu_layers"],
        "n_batch": params["n_batch"],
        "n_ubatch": params["n_ubatch"],
        "swa_full": params["swa_full"],
        "type_k": params["type_k"],
        "type_v": params["type_v"],
    }


# --------------------------------------------------------------------------- child side


def flash_attn_type(lc: Any, flash: bool | None) -> int:
    """llama.cpp's ``llama_flash_attn_type`` for True, False or None (auto)."""
    if flash is None:
        return int(lc.LLAMA_FLASH_ATTN_TYPE_AUTO)
    return int(lc.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED)


@contextlib.contextmanager
def flash_attn_arg(lc: Any, flash: bool | None) -> Iterator[bool]:
    """The ``flash_attn`` argument that makes ``Llama(...)``, built inside the block,
    use ``flash`` (None: llama.cpp's auto, its own tools' default).

    llama-cpp-python maps its boolean to ENABLED or DISABLED only; for auto the ENABLED
    constant stands for AUTO while the block runs. ``Llama`` reads the constant from the
    ``llama_cpp.llama_cpp`` module (not the package's re-export), so that is where it is
    swapped. A worker holds one model, so the swap is contained.
    """
    low = getattr(lc, "llama_cpp", lc)  # the ctypes module Llama's code refers to
    saved = low.LLAMA_FLASH_ATTN_TYPE_ENABLED
    if flash is None:
        low.LLAMA_FLASH_ATTN_TYPE_ENABLED = low.LLAMA_FLASH_ATTN_TYPE_AUTO
    try:
        yield flash is not False
    finally:
        low.LLAMA_FLASH_ATTN_TYPE_ENABLED = saved


def context_params(
    lc: Any,
    *,
    n_ctx: int,
    n_batch: int,
    n_ubatch: int,
    n_threads: int,
    flash_attn: bool | None,
    type_k: int,
    type_v: int,
    swa_full: bool = False,
) -> Any:
    """``llama_context_params`` for the raw API (the bench worker), from defaults."""
    cp = lc.llama_context_default_params()
    cp.n_ctx = n_ctx
    cp.n_batch = n_batch
    cp.n_ubatch = n_ubatch
    cp.type_k = type_k
    cp.type_v = type_v
    cp.flash_attn_type = flash_attn_type(lc, flash_attn)
    cp.swa_full = swa_full
    cp.n_threads = n_threads
    cp.n_threads_batch = n_threads
    return cp
