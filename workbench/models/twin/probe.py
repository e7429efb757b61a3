"""llama.cpp's own figures for a twin: load it in a child process and read the KV and
recurrent-state buffer sizes from its log (moved here unchanged from ``twin.py``; the
shared child-process layer replaces it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from workbench.models.twin.base import TwinError

_PROBE = r"""
import sys
import llama_cpp.llama_cpp as ll
from llama_cpp import Llama

_default = ll.llama_model_default_params


def _params():
    p = _default()
    p.use_extra_bufts = False  # no CPU repack copies: weights stay in the mapping
    return p


ll.llama_model_default_params = _params
path, ctx, swa_full, fa = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
Llama(path, n_ctx=ctx, n_threads=1, n_batch=512, n_ubatch=512, use_mmap=True, verbose=True,
      swa_full=swa_full, flash_attn=fa)
print("PROBE-OK", file=sys.stderr)
"""


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
    """Load ``path`` in a llama-cpp-python subprocess (mmap, no repacking, so weights are
    mapped, not copied) and return the KV / recurrent-state buffer sizes it logs.

    Raises:
        TwinError: the load failed; the message carries the last log line.
    """
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(ctx), str(int(swa_full)),
         str(int(flash_attn))],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    log = proc.stderr
    if proc.returncode != 0 or "PROBE-OK" not in log:
        tail = [ln for ln in log.splitlines() if ln.strip()][-1:] or ["no output"]
        raise TwinError(f"llama.cpp could not load {Path(path).name}: {tail[0][:200]}")
    mib = 1024 * 1024

    def total(what: str) -> int:
        vals = re.findall(rf"{what} buffer size =\s*([0-9.]+) MiB", log)
        return round(sum(float(v) for v in vals) * mib)

    return LlamaMemory(total("KV"), total("RS"), int(0.005 * mib) + 1)
