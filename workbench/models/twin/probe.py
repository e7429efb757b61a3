"""llama.cpp's own figures for a twin: the KV and recurrent-state buffers it allocates
for one context, read by the llama layer's memory probe (:mod:`workbench.llama.probe`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.llama.log import BUFFER_RESOLUTION_BYTES
from workbench.llama.probe import ProbeConfig, probe
from workbench.models.twin.base import TwinError


@dataclass(frozen=True)
class LlamaMemory:
    """Cache buffers llama.cpp reported allocating for one context."""

    kv_bytes: int
    """Sum of every "KV buffer size" line (full and sliding-window caches)."""
    state_bytes: int
    """Sum of the "RS buffer size" lines (recurrent state)."""
    resolution: int
    """The log prints MiB with 2 decimals: each figure is exact to this many bytes."""


def llama_cpp_memory(
    path: str | Path,
    ctx: int = 4096,
    *,
    swa_full: bool = False,
    flash_attn: bool = False,
    timeout: float = 600.0,
) -> LlamaMemory:
    """Load ``path`` in a child process (mmap, no repacking, so weights are mapped, not
    copied), create one context and return the KV / recurrent-state buffer sizes.

    Raises:
        TwinError: the load failed; the message says why in one line.
    """
    config = ProbeConfig(n_ctx=ctx, swa_full=swa_full, flash_attn=flash_attn)
    run = probe(path, [config], mmap_only=True, timeout=timeout)
    result = run.results[0] if run.results else None
    error = run.error or (result.error if result else None)
    if result is None or result.buffers is None or error:
        raise TwinError(f"llama.cpp could not load {Path(path).name}: {(error or '?')[:200]}")
    return LlamaMemory(result.buffers.kv_bytes, result.buffers.rs_bytes, BUFFER_RESOLUTION_BYTES)
