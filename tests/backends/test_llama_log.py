"""One-line causes from real llama.cpp log excerpts."""

from __future__ import annotations

import signal

from workbench.backends.llama_log import exit_description, failure_cause

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
