"""Measure step of the GPU twin measurement (issue 8): run after setup.sh on the CUDA machine.

For the Gemma 4 26B A4B and Qwen 3.5 35B A3B twins (Q4_K_M mix, all layers on the GPU,
flash attention on): pp512 and tg128 at depth 0 and 32768 through ``workbench bench`` and
through ``llama-bench`` of the same llama.cpp build, interleaved per model; then the
largest context each fits in 80 GB by the planner, and llama.cpp's real allocation at that
context. Writes $OUT/gpu_twins.json (committed as data/gpu/twins_h100.json).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from workbench.gguf import read_model_info
from workbench.models import memory

G = Path(".gpu")
TW = Path(os.environ.get("TWIN_DIR", "/tmp/twins"))
OUT = Path(os.environ.get("OUT", "/tmp/out"))
REPS = os.environ.get("REPS", "3")
DEPTHS = os.environ.get("DEPTHS", "0,32768")
BUDGET = 80e9
MODELS = ["gemma-4-26b-a4b", "qwen3.5-35b-a3b"]

_PROBE = r"""
import sys, llama_cpp
from llama_cpp import Llama
llm = Llama(sys.argv[1], n_ctx=int(sys.argv[2]), n_gpu_layers=-1, flash_attn=True,
            swa_full=False, n_batch=512, n_ubatch=512, verbose=True)
llm.eval(llm.tokenize(b"hello world")[:4])
print("PROBE-OK", file=sys.stderr)
"""


def _smi(query: str) -> str:
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return out.stdout.strip()


def _run(cmd: list[str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    print(f"[{time.time() - t0:6.1f}s] rc={p.returncode} {' '.join(cmd[:4])} ...", file=sys.stderr)
    return p


def _collect(
    result: dict[str, Any], key: str, name: str, proc: subprocess.CompletedProcess[str]
) -> None:
    """Append a tool's JSON rows (tagged with the model) to ``result[key]``, or its error."""
    if proc.returncode == 0:
        for row in json.loads(proc.stdout):
            row["model_name"] = name
            result[key].append(row)
    else:
        result["errors"].append(f"{key} {name}: {proc.stderr[-500:]}")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "gpu": _smi("name,memory.total,driver_version"),
        "cuda": subprocess.run(["nvcc", "--version"], capture_output=True, text=True, check=False)
        .stdout.strip()
        .splitlines()[-1:],
        "llama_cpp_python": "0.3.36 (Python bindings; libraries built from its vendored "
        "llama.cpp with GGML_CUDA=ON, sm_90)",
        "settings": {
            "n_prompt": 512,
            "n_gen": 128,
            "depths": DEPTHS,
            "reps": int(REPS),
            "flash_attn": True,
            "n_gpu_layers": "all",
        },
        "llama_bench": [],
        "workbench_bench": [],
        "max_context": [],
        "errors": [],
    }
    for name in MODELS:
        path = TW / f"{name}.gguf"
        common = ["-m", str(path), "-p", "512", "-n", "128", "-d", DEPTHS, "-r", REPS, "-fa", "1"]
        llama_bench = os.environ.get("BUILD_DIR", "/tmp/lcbuild") + "/bin/llama-bench"
        tools = {
            "llama_bench": [llama_bench, *common, "-ngl", "99", "-o", "json"],
            "workbench_bench": [sys.executable, "-m", "workbench", "bench", *common,
                                "-ngl", "-1", "--no-store", "--json"],
        }  # fmt: skip
        for key, cmd in tools.items():
            _collect(result, key, name, _run(cmd))

        info = read_model_info(path)
        mx = memory.max_context(info, BUDGET, flash_attn=True)
        plan = memory.plan(info, mx, flash_attn=True)
        probe = _run([sys.executable, "-c", _PROBE, str(path), str(mx)], timeout=600)
        log = probe.stderr
        kv = sum(float(v) for v in re.findall(r"KV buffer size\s*=\s*([\d.]+) MiB", log))
        rs = sum(float(v) for v in re.findall(r"RS buffer size\s*=\s*([\d.]+) MiB", log))
        model_buf = sum(
            float(v) for v in re.findall(r"CUDA0 model buffer size\s*=\s*([\d.]+) MiB", log)
        )
        compute = sum(
            float(v) for v in re.findall(r"CUDA0 compute buffer size\s*=\s*([\d.]+) MiB", log)
        )
        result["max_context"].append(
            {
                "model_name": name,
                "n_ctx_train": info.n_ctx_train,
                "planner_max_ctx_80GB": mx,
                "planner_weights_bytes": plan.weights_bytes,
                "planner_kv_bytes": plan.kv_bytes,
                "planner_state_bytes": plan.state_bytes,
                "planner_total_bytes": plan.total_bytes,
                "llama_loaded_ok": "PROBE-OK" in log,
                "llama_kv_mib": kv,
                "llama_rs_mib": rs,
                "llama_cuda_model_mib": model_buf,
                "llama_cuda_compute_mib": compute,
                "planner_kv_mib": plan.kv_bytes / 2**20,
                "planner_state_mib": plan.state_bytes / 2**20,
                "log_tail": [ln for ln in log.splitlines() if "buffer size" in ln or "error" in ln][
                    -12:
                ],
            }
        )
        (OUT / "gpu_twins.json").write_text(json.dumps(result, indent=1, default=str))
    (OUT / "gpu_twins.json").write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
