"""Ask llama.cpp itself how much memory it allocates, in a child process.

Each model is loaded in a fresh ``python -c`` process (a llama.cpp abort must not take
the caller with it) that creates one context per configuration with ``verbose=True``;
the KV (``llama_kv_cache: CPU KV buffer size = X MiB``) and recurrent-state
(``llama_memory_recurrent: CPU RS buffer size = X MiB``) lines of its log are parsed.
llama.cpp prints these with two decimals, so measured values are MiB rounded to 0.01.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_KV_LINE = re.compile(r"llama_kv_cache:\s+\S+ KV buffer size =\s+([\d.]+) MiB")
_RS_LINE = re.compile(r"llama_memory_recurrent:\s+\S+ RS buffer size =\s+([\d.]+) MiB")
_MARK = "@@workbench-probe "

_CHILD = r"""
import json, sys
import llama_cpp
from llama_cpp import Llama
path, configs = sys.argv[1], json.loads(sys.argv[2])
types = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8,
         "bf16": 30, "iq4_nl": 20}
for i, c in enumerate(configs):
    print("@@workbench-probe begin %d" % i, file=sys.stderr, flush=True)
    saved = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
    fa = c["flash_attn"]
    if fa is None:
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
    try:
        llm = Llama(model_path=path, n_ctx=c["n_ctx"], n_batch=c["n_batch"],
                    n_ubatch=c["n_ubatch"], swa_full=c["swa_full"], flash_attn=fa is not False,
                    type_k=types[c["type_k"]], type_v=types[c["type_v"]],
                    n_threads=1, verbose=True)
        if c.get("decode"):
            llm.eval(llm.tokenize(b"Hello there"))
        llm.close()
    except Exception as e:
        print("@@workbench-probe error %d %s" % (i, str(e).replace("\n", " ")),
              file=sys.stderr, flush=True)
    finally:
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED = saved
    print("@@workbench-probe end %d" % i, file=sys.stderr, flush=True)
"""


@dataclass(frozen=True)
class ProbeConfig:
    """One context to create."""

    n_ctx: int
    swa_full: bool = False
    flash_attn: bool | None = None
    """True, False, or None for llama.cpp's auto."""
    type_k: str = "f16"
    type_v: str = "f16"
    n_batch: int = 512
    n_ubatch: int = 512
    decode: bool = False
    """Also evaluate a few tokens (to catch aborts on the first decode)."""


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
    payload = json.dumps([c.__dict__ for c in configs])
    # ggml attaches gdb to print a backtrace before it aborts; on a loaded machine that
    # can take minutes, and the abort itself is what callers want to see.
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), payload],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    log = proc.stderr
    results: list[ProbeResult] = []
    chunks = log.split(_MARK + "begin ")[1:]
    for chunk in chunks:
        idx_s, _, body = chunk.partition("\n")
        idx = int(idx_s.strip())
        if _MARK + f"end {idx}" not in body:
            break  # the process died inside this configuration
        body = body.split(_MARK + f"end {idx}")[0]
        err = re.search(re.escape(_MARK) + r"error \d+ (.*)", body)
        kv = [float(x) for x in _KV_LINE.findall(body)]
        rs = [float(x) for x in _RS_LINE.findall(body)]
        results.append(
            ProbeResult(
                config=configs[idx],
                kv_mib=tuple(kv) if not err else None,
                rs_mib=sum(rs),
                error=err.group(1) if err else None,
            )
        )
    return ProbeRun(proc.returncode, tuple(results), log)


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
