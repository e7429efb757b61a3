"""Tiny architecture fixtures: headers carry what llama.cpp requires, files are
deterministic, and (slow) every one loads and generates in llama-cpp-python, in a child
process; the deliberately broken gemma4 file aborts llama.cpp on the first decode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workbench.gguf import read_model_info, validate_header
from workbench.testing import VARIANTS, write_fixture
from workbench.testing.probe import ProbeConfig, probe_memory

ALL = [(a, v) for a, vs in VARIANTS.items() for v in vs]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str | None], Path]:
    root = tmp_path_factory.mktemp("fixtures")
    return {(a, v): write_fixture(a, root / f"{a}-{v}.gguf", variant=v) for a, v in ALL}


@pytest.mark.parametrize(("arch", "variant"), ALL)
def test_header(
    written: dict[tuple[str, str | None], Path], arch: str, variant: str | None
) -> None:
    info = read_model_info(written[(arch, variant)])
    validate_header(info)
    assert info.arch == arch
    assert info.vocab_size == 49152  # SmolLM2's tokenizer
    assert info.metadata["tokenizer.ggml.model"] == "gpt2"
    assert info.size_bytes < 40 * 1024 * 1024
    if arch == "gemma4":
        pattern = info.key("attention.sliding_window_pattern")
        assert isinstance(pattern, list) and all(isinstance(x, bool) for x in pattern)
        assert pattern[-1] is False  # the last layer is global
        assert info.key("embedding_length_per_layer_input") is not None
    if arch == "qwen35":
        assert info.key("ssm.inner_size") == info.key("ssm.state_size") * info.key(
            "ssm.time_step_rank"
        )


def test_variants_differ(written: dict[tuple[str, str | None], Path]) -> None:
    moe = read_model_info(written[("gemma4", "moe")])
    shared = read_model_info(written[("gemma4", "shared_kv")])
    dense = read_model_info(written[("gemma4", None)])
    assert moe.key("expert_count") == 4
    assert moe.key("embedding_length_per_layer_input") == 0  # written even when 0
    assert any(t.name == "blk.0.ffn_gate_up_exps.weight" for t in moe.tensors)
    assert shared.key("attention.shared_kv_layers") == 2
    assert not any(t.name == "blk.5.attn_k.weight" for t in shared.tensors)
    assert any(t.name == "per_layer_token_embd.weight" for t in dense.tensors)
    assert isinstance(dense.key("attention.head_count_kv"), list)


def test_deterministic_and_overridable(tmp_path: Path) -> None:
    a = write_fixture("llama", tmp_path / "a.gguf", seed=3, n_layer=2)
    b = write_fixture("llama", tmp_path / "b.gguf", seed=3, n_layer=2)
    c = write_fixture("llama", tmp_path / "c.gguf", seed=4, n_layer=2)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert read_model_info(a).n_layers == 2


def test_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no fixture"):
        write_fixture("mamba", tmp_path / "x.gguf")
    with pytest.raises(ValueError, match="no variant"):
        write_fixture("llama", tmp_path / "x.gguf", variant="moe")
    with pytest.raises(TypeError, match="n_layers"):
        write_fixture("llama", tmp_path / "x.gguf", n_layers=2)
    with pytest.raises(ValueError, match="gemma4"):
        write_fixture("llama", tmp_path / "x.gguf", break_for_abort=True)
    broken = read_model_info(write_fixture("gemma4", tmp_path / "b.gguf", break_for_abort=True))
    assert broken.key("rope.dimension_count_swa") is None


_GENERATE = r"""
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=512, n_threads=1, verbose=False, seed=1)
out = llm("Once upon a time", max_tokens=6, temperature=0.8, seed=1)
print(out["usage"]["completion_tokens"], repr(out["choices"][0]["text"]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "variant"), ALL)
def test_loads_and_generates(
    written: dict[tuple[str, str | None], Path], arch: str, variant: str | None
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _GENERATE, str(written[(arch, variant)])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    n_tokens = int(proc.stdout.split()[0])
    assert n_tokens == 6  # control tokens are zeroed, so no early end-of-generation


@pytest.mark.slow
def test_broken_gemma4_aborts_on_first_decode(tmp_path: Path) -> None:
    path = write_fixture("gemma4", tmp_path / "broken.gguf", break_for_abort=True)
    created = probe_memory(path, [ProbeConfig(n_ctx=512)])
    assert created.returncode == 0 and created.results[0].kv_mib  # loads, context created
    decoded = probe_memory(path, [ProbeConfig(n_ctx=512, decode=True)])
    assert decoded.returncode != 0  # SIGABRT from GGML_ASSERT in the RoPE kernel
    assert "GGML_ASSERT" in decoded.log
    assert decoded.results == ()
