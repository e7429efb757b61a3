"""The KV-cache types llama.cpp accepts, in one table: the generation backend, the bench
and the memory planner all take their names and ggml types from here."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from workbench.errors import InputError

_T = GGMLQuantizationType
KV_CACHE_TYPES: Mapping[str, int] = MappingProxyType(
    {
        name: int(t)  # plain ints: they travel to worker processes without gguf
        for name, t in (
            ("f32", _T.F32), ("f16", _T.F16), ("bf16", _T.BF16), ("q8_0", _T.Q8_0),
            ("q4_0", _T.Q4_0), ("q4_1", _T.Q4_1), ("iq4_nl", _T.IQ4_NL), ("q5_0", _T.Q5_0),
            ("q5_1", _T.Q5_1),
        )
    }
)  # fmt: skip
"""Cache type name (``-ctk`` / ``-ctv``, ``type_k`` / ``type_v``) -> ggml type id
(``gguf.GGMLQuantizationType``), the list llama.cpp's ``--cache-type-k`` accepts
(common/arg.cpp ``kv_cache_types``)."""


class UnknownKVCacheType(InputError):
    """A KV-cache type llama.cpp does not accept (the message lists those it does)."""


def kv_cache_type(name: str) -> GGMLQuantizationType:
    """The ggml type of KV-cache type ``name`` (f16, q8_0, ...).

    Raises:
        UnknownKVCacheType: not one of :data:`KV_CACHE_TYPES`.
    """
    try:
        return GGMLQuantizationType(KV_CACHE_TYPES[name])
    except KeyError:
        raise UnknownKVCacheType(
            f"unknown KV-cache type {name!r} (use one of {', '.join(KV_CACHE_TYPES)})"
        ) from None


def kv_block(name: str) -> tuple[int, int]:
    """(elements per block, bytes per block) of KV-cache type ``name``; a cache row must
    hold a whole number of blocks."""
    return GGML_QUANT_SIZES[kv_cache_type(name)]


def is_quantized(name: str) -> bool:
    """True for block-quantized cache types (a quantized V cache needs flash attention)."""
    return kv_block(name)[0] > 1
