"""Twins of catalog models built from their published configuration alone.

:func:`catalog_headers` lays a catalog entry's :class:`~workbench.models.layouts.Hparams`
out with the architecture's one layout function, gives every tensor the type
llama-quantize would choose for a preset, and adds a synthetic tokenizer of the real
vocabulary size. Deliberate simplifications, all of which leave the per-token bytes
unchanged:

- Multi-token-prediction (MTP / NextN) layers are left out (``block_count`` is the
  number of decoder layers): llama.cpp skips them unless speculative MTP is asked for.
- The tokenizer is a synthetic byte-level BPE vocabulary of the real size (256 byte
  tokens, ``<tN>`` fillers, ``<bos>`` / ``<eos>``), so the embedding and output matrices
  have their real shapes; text in and out is not the real model's.
- Vision / audio towers are not part of the twin (they are separate mmproj files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gguf import GGMLQuantizationType, GGUFValueType

from workbench.gguf import (
    DEFAULT_ALIGNMENT,
    GGUFHeader,
    MetaEntry,
    ModelInfo,
    TensorInfo,
    entry_bytes,
    model_info_from_header,
    sequential,
)
from workbench.models import memory
from workbench.models.catalog import CATALOG, TWIN_PREFIX, CatalogEntry, Hparams, catalog_entry
from workbench.models.layouts import layout
from workbench.models.twin.base import Fill, TwinError, TwinResult, marker_entries
from workbench.models.twin.fill import write_twin
from workbench.models.twin.quant import PRESETS, assign_types

if TYPE_CHECKING:
    import polars as pl


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


def synthetic_vocab_entries(n_vocab: int) -> list[MetaEntry]:
    """A byte-level BPE tokenizer of ``n_vocab`` tokens that llama.cpp loads: 256 byte
    tokens (so any text tokenizes), ``<tN>`` fillers, and control tokens ``<bos>`` and
    ``<eos>`` as the last two ids; no merges."""
    if n_vocab < 260:
        raise ValueError("a synthetic vocabulary needs at least 260 tokens")
    tokens = _byte_tokens() + [f"<t{i}>" for i in range(256, n_vocab - 2)] + ["<bos>", "<eos>"]
    types = [1] * (n_vocab - 2) + [3, 3]
    t = GGUFValueType
    return [
        MetaEntry("tokenizer.ggml.model", t.STRING, "gpt2"),
        MetaEntry("tokenizer.ggml.pre", t.STRING, "default"),
        MetaEntry("tokenizer.ggml.tokens", t.ARRAY, tokens, t.STRING),
        MetaEntry("tokenizer.ggml.token_type", t.ARRAY, types, t.INT32),
        MetaEntry("tokenizer.ggml.merges", t.ARRAY, [], t.STRING),
        MetaEntry("tokenizer.ggml.bos_token_id", t.UINT32, n_vocab - 2),
        MetaEntry("tokenizer.ggml.eos_token_id", t.UINT32, n_vocab - 1),
        MetaEntry("tokenizer.ggml.add_bos_token", t.BOOL, False),
    ]


@dataclass(frozen=True)
class CatalogHeader:
    """A catalog twin's header, before anything is written."""

    entries: tuple[MetaEntry, ...]
    tensors: tuple[TensorInfo, ...]


def twin_entries() -> list[CatalogEntry]:
    """The catalog entries a twin can be built from without the hub (those with
    published hyperparameters)."""
    return [e for e in CATALOG if e.hparams is not None]


def _entry(name: str) -> tuple[CatalogEntry, Hparams]:
    entry = catalog_entry(name)
    if entry is None or entry.hparams is None:
        known = ", ".join(e.name for e in twin_entries())
        raise TwinError(f"no published configuration {name!r}; known: {known}")
    return entry, entry.hparams


def _preset(quant: str) -> str:
    if quant.upper() not in PRESETS:
        raise TwinError(f"unknown quantization {quant!r}; known: {', '.join(PRESETS)}")
    return quant.upper()


def catalog_headers(name: str, quant: str = "Q4_K_M") -> CatalogHeader:
    """Metadata and tensor descriptors of catalog model ``name``'s twin (nothing written).

    Raises:
        TwinError: no published configuration by that name, or an unknown preset.
    """
    entry, hp = _entry(name)
    quant = _preset(quant)
    lay = layout(hp)
    n_expert = int(hp.extra.get("n_expert", 0))
    types = assign_types(lay.tensors, quant, n_layer=hp.n_layer, n_expert=n_expert)
    t = GGUFValueType
    entries = (
        MetaEntry("general.architecture", t.STRING, hp.arch),
        MetaEntry("general.name", t.STRING, f"{entry.title} (twin)"),
        MetaEntry("general.file_type", t.UINT32, int(PRESETS[quant][1])),
        MetaEntry("general.quantization_version", t.UINT32, 2),
        *lay.entries,
        *synthetic_vocab_entries(hp.n_vocab),
    )
    tensors = sequential(
        (
            (s.name, s.shape, GGMLQuantizationType[ty])
            for s, ty in zip(lay.tensors, types, strict=True)
        ),
        DEFAULT_ALIGNMENT,
    )
    return CatalogHeader(entries, tuple(tensors))


def twin_from_catalog(
    name: str,
    out: str | Path,
    *,
    quant: str = "Q4_K_M",
    fill: Fill = "random",
    seed: int = 0,
) -> TwinResult:
    """Twin of a published configuration (``gemma-4-26b-a4b``, ``qwen3.5-35b-a3b``, ...)."""
    entry, hp = _entry(name)
    head = catalog_headers(entry.name, quant)
    source = f"{TWIN_PREFIX}{entry.name}:{quant.upper()}"
    entries = [entry_bytes(e) for e in head.entries] + marker_entries(source, fill)
    size = write_twin(out, entries, head.tensors, fill=fill, seed=seed)
    return TwinResult(Path(out), source, hp.arch, len(head.tensors),
                      sum(t.n_bytes for t in head.tensors), size, fill)  # fmt: skip


def catalog_info(name: str, quant: str = "Q4_K_M") -> ModelInfo:
    """A catalog model's :class:`ModelInfo`, from its published configuration alone: what
    the planner needs to answer "how much context fits" before anything is downloaded."""
    entry, _ = _entry(name)
    head = catalog_headers(entry.name, quant)
    meta: dict[str, object] = {}
    lengths: dict[str, int] = {}
    for e in head.entries:
        if isinstance(e.value, list | tuple):
            lengths[e.key] = len(e.value)
            if e.key.startswith("tokenizer.ggml."):
                continue
        meta[e.key] = list(e.value) if isinstance(e.value, tuple) else e.value
    header = GGUFHeader(3, meta, list(head.tensors), 0, lengths)
    return model_info_from_header(header, Path(f"{entry.name}-{quant}.gguf"), header.data_bytes)


def catalog_frame(
    budget_bytes: int | float, *, quant: str = "Q4_K_M", ctx: int = 32768
) -> pl.DataFrame:
    """Every catalog model's weights, KV cache per token, memory at ``ctx`` and the largest
    context that fits ``budget_bytes`` (planner figures, f16 KV, flash attention auto)."""
    import polars as pl

    rows = []
    seen: set[int] = set()
    for entry in twin_entries():
        if id(entry.hparams) in seen:  # one row per configuration (two repos of one model)
            continue
        seen.add(id(entry.hparams))
        info = catalog_info(entry.name, quant)
        p = memory.plan(info, min(ctx, info.n_ctx_train or ctx))
        rows.append({
            "model": entry.name,
            "arch": info.arch,
            "params_b": info.params / 1e9,
            "weights_gib": p.weights_bytes / 2**30,
            "kv_kib_per_token": p.kv_bytes_per_token / 1024,
            f"total_gib_at_{ctx}": p.total_bytes / 2**30,
            "max_ctx_in_budget": memory.max_context(info, budget_bytes),
            "n_ctx_train": info.n_ctx_train,
        })  # fmt: skip
    return pl.DataFrame(rows)
