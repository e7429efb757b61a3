"""The memory probe: contexts created in a child, buffer sizes read from its log."""

from __future__ import annotations

from pathlib import Path

from workbench.llama.probe import ProbeConfig, probe
from workbench.testing import write_fixture


def test_each_context_reports_its_own_buffers(tmp_path: Path) -> None:
    path = write_fixture("gemma3", tmp_path / "g3.gguf")  # sliding-window layers too
    small, large = ProbeConfig(n_ctx=256), ProbeConfig(n_ctx=1024, swa_full=True)
    run = probe(path, [small, large], mmap_only=True)
    assert (run.returncode, run.error) == (0, None), run.log[-2000:]
    a, b = (r.buffers for r in run.results)
    assert a is not None and b is not None
    assert len(a.kv_mib) == 2, "the full cache, then the sliding-window one"
    assert b.kv_bytes > a.kv_bytes  # each result reads its own context's lines
    assert a.rs_mib == () and b.rs_bytes == 0


def test_an_abort_ends_the_run_and_says_why(tmp_path: Path) -> None:
    path = write_fixture("gemma4", tmp_path / "abort.gguf", break_for_abort=True)
    run = probe(path, [ProbeConfig(n_ctx=256), ProbeConfig(n_ctx=256, decode=True),
                       ProbeConfig(n_ctx=512)])  # fmt: skip
    assert [r.error for r in run.results] == [None], "only the context before the abort"
    assert run.returncode is not None and run.returncode < 0
    assert run.error and "llama.cpp stopped the memory probe (SIGABRT)" in run.error
    assert "GGML_ASSERT" in run.error and "context 2 of 3" in run.error


def test_a_file_that_does_not_load_fails_every_config(tmp_path: Path) -> None:
    bad = tmp_path / "not.gguf"
    bad.write_text("not a model")
    run = probe(bad, [ProbeConfig(n_ctx=256), ProbeConfig(n_ctx=512)])
    assert run.error and run.error.startswith("cannot load not.gguf")
    assert [r.buffers for r in run.results] == [None, None]
    assert all(r.error == run.error for r in run.results)
