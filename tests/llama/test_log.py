"""One-line causes from real llama.cpp log excerpts."""

from __future__ import annotations

import signal

from workbench.llama.log import (
    buffers,
    exit_description,
    failure_cause,
    flash_attn_used,
    python_failure,
)

LOAD_LOG = """\
print_info: file size   = 92.10 MiB (5.74 BPW)
llama_model_load: error loading model: unknown model architecture: 'zzzzz'
llama_model_load_from_file_impl: failed to load model
"""

ABORT_LOG = """\
llama_context: n_ctx = 256
/src/ggml/src/ggml-cpu/ops.cpp:5530: GGML_ASSERT(n_dims <= ne0) failed
decode: failed to decode
"""


def test_most_specific_line_wins() -> None:
    assert failure_cause(LOAD_LOG) == "unknown model architecture: 'zzzzz'"
    assert failure_cause(ABORT_LOG) == "GGML_ASSERT(n_dims <= ne0) failed"
    assert failure_cause("ggml_backend_cpu_buffer_type_alloc_buffer: out of memory") is not None
    assert failure_cause("llama_context: n_ctx = 256\nall good\n") is None


def test_exit_description() -> None:
    assert exit_description(-signal.SIGABRT) == "SIGABRT"
    assert exit_description(-signal.SIGKILL) == "SIGKILL"
    assert exit_description(1) == "exit status 1"
    assert exit_description(None) == "unknown status"


# Excerpts of real logs of this llama.cpp build (Gemma 3 270M, n_ctx 512, CPU).
AUTO_LOG = """\
llama_context: n_ctx                 = 512
llama_context: flash_attn            = auto
llama_context:        CPU  output buffer size =     1.00 MiB
llama_kv_cache:        CPU KV buffer size =     1.50 MiB
llama_kv_cache:        CPU KV buffer size =     7.50 MiB
resolve_fused_ops: Flash Attention enabled
sched_reserve:        CPU compute buffer size =   514.50 MiB
"""
RECURRENT_LOG = """\
llama_kv_cache:        CPU KV buffer size =    16.00 MiB
llama_memory_recurrent:        CPU RS buffer size =     4.50 MiB
"""


def test_buffers_are_the_kv_and_state_lines_in_order() -> None:
    b = buffers(AUTO_LOG)
    assert b.kv_mib == (1.50, 7.50)  # full cache, then the sliding-window one
    assert b.rs_mib == ()
    assert b.kv_bytes == 9 * 1024 * 1024
    r = buffers(RECURRENT_LOG)
    assert (r.kv_bytes, r.rs_bytes) == (16 * 2**20, int(4.5 * 2**20))
    assert buffers("llama_context: CPU  output buffer size = 1.00 MiB").kv_mib == ()


def test_flash_attention_as_llama_cpp_decided_it() -> None:
    # "auto" printed as the setting must not read as off: the resolution line decides
    assert flash_attn_used(AUTO_LOG, None) is True
    off = AUTO_LOG.replace(
        "Flash Attention enabled", "Flash Attention not supported, set to disabled"
    )
    assert flash_attn_used(off, None) is False
    assert flash_attn_used("llama_context: flash_attn            = disabled\n", False) is False
    forced = "llama_init_from_model: enabling flash_attn since it is required for quantized V cache"
    assert flash_attn_used(forced, None) is True
    assert flash_attn_used("nothing about it", None) is None
    assert flash_attn_used("nothing about it", False) is False


def test_python_failure_is_the_traceback_exception_line() -> None:
    log = (
        "llama_context: n_ctx = 512\n"
        "Traceback (most recent call last):\n"
        '  File "<frozen runpy>", line 198, in _run_module_as_main\n'
        "ModuleNotFoundError: No module named 'workbench.nope'\n"
    )
    assert python_failure(log) == "ModuleNotFoundError: No module named 'workbench.nope'"
    assert python_failure(ABORT_LOG) is None
