"""Ask llama.cpp itself how much memory it allocates, in a child process: the planner's
tests compare :func:`workbench.models.memory.plan` with what this reports.

The child is the llama layer's memory probe (:mod:`workbench.llama.probe`): one loaded
model, one context per configuration, the KV (``llama_kv_cache: CPU KV buffer size = X
MiB``) and recurrent-state (``llama_memory_recurrent: CPU RS buffer size = X MiB``) lines
of its log read back. llama.cpp prints these with two decimals, so measured values are
MiB rounded to 0.01.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.llama.probe import ProbeConfig, probe

__all__ = ["ProbeConfig", "ProbeResult", "ProbeRun", "mib2", "plan_kwargs", "probe_memory"]


@dataclass(frozen=True)
class ProbeResult:
    """What llama.cpp logged for one configuration."""

    config: ProbeConfig
    kv_mib: tuple[float, ...] | None
    """The KV buffer lines in log order: the full-attention cache, then the sliding-window
    cache for SWA models (None if the context was not created)."""
    rs_mib: float
    """Sum of the recurrent-state buffer lines."""
    error: str | None


@dataclass(frozen=True)
class ProbeRun:
    """A child process's results and exit status."""

    returncode: int
    results: tuple[ProbeResult, ...]
    log: str


def probe_memory(path: str | Path, configs: list[ProbeConfig], *, timeout: float = 300) -> ProbeRun:
    """Create each context in a child process and parse llama.cpp's buffer sizes.

    Configurations after one that aborts the process get no result.
    """
    run = probe(path, configs, timeout=timeout)
    results = tuple(
        ProbeResult(
            config=r.config,
            kv_mib=r.buffers.kv_mib if r.buffers is not None else None,
            rs_mib=sum(r.buffers.rs_mib) if r.buffers is not None else 0.0,
            error=r.error,
        )
        for r in run.results
    )
    return ProbeRun(run.returncode if run.returncode is not None else -1, results, run.log)


def mib2(n_bytes: int) -> float:
    """Bytes -> MiB rounded to two decimals, as llama.cpp prints them."""
    return float(f"{n_bytes / 1024 / 1024:.2f}")


def plan_kwargs(config: ProbeConfig) -> dict[str, Any]:
    """The :func:`workbench.models.memory.plan` arguments matching a probe config."""
    return {
        "kv_type": config.type_k,
        "kv_type_v": config.type_v,
        "swa_full": config.swa_full,
        "flash_attn": config.flash_attn,
        "n_ubatch": min(config.n_ubatch, config.n_batch),
    }
