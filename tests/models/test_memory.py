"""The memory planner: hand-computed layouts, max_context, the CLI, the figure, and
agreement with the buffers llama.cpp itself allocates (slow, one child process per
model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.gguf import ModelInfo, read_model_info
from workbench.models.memory import (
    MIB,
    UnsupportedArch,
    max_context,
    plan,
    plan_frame,
)
from workbench.testing.probe import ProbeConfig, mib2, plan_kwargs, probe_memory


def _info(fixture_models: dict[str, Path], name: str) -> ModelInfo:
    return read_model_info(fixture_models[name])


def test_plain_attention_bytes(fixture_models: dict[str, Path]) -> None:
    info = _info(fixture_models, "llama")
    # 4 layers x 2 KV heads x 32 dims, f16: 128 B per K row, K+V = 1 KiB per token.
    p = plan(info, 1000)
    assert p.n_ctx == 1024  # llama.cpp pads the context to 256
    assert p.kv_bytes == 1024 * 1024
    assert p.kv_bytes_per_token == 1024
    assert p.state_bytes == 0
    assert p.weights_bytes == sum(t.n_bytes for t in info.tensors)
    assert p.total_bytes == p.weights_bytes + p.kv_bytes
    q8 = plan(info, 1024, kv_type="q8_0")
    assert q8.kv_bytes == 4 * 2 * 68 * 1024  # 64 elements = 2 blocks of 34 bytes


def test_sliding_window_and_v_padding(fixture_models: dict[str, Path]) -> None:
    info = _info(fixture_models, "gemma4")
    # 2 global layers (1 KV head x 64), 4 sliding layers (4 KV heads x 32), window 128.
    p = plan(info, 4096)
    assert p.n_ctx_swa == 768  # pad256(128 + 512)
    assert p.kv_bytes == 2 * 4096 * 256 + 4 * 768 * 512
    assert p.kv_bytes_swa == 4 * 768 * 512
    assert p.kv_bytes_per_token == 512
    assert (p.n_layers_full, p.n_layers_swa) == (2, 4)
    full = plan(info, 4096, swa_full=True)
    assert full.n_ctx_swa == 4096
    assert full.kv_bytes == 2 * 4096 * 256 + 4 * 4096 * 512
    # Without flash attention the global layers' V rows are padded to the sliding rows.
    no_fa = plan(info, 4096, flash_attn=False)
    assert no_fa.v_bytes == 2 * 4096 * 256 + 4 * 768 * 256
    assert no_fa.k_bytes == p.k_bytes
    # A small context is not padded past itself: the SWA cache never exceeds n_ctx.
    assert plan(info, 256).n_ctx_swa == 256


def test_shared_kv_layers_own_nothing(fixture_models: dict[str, Path]) -> None:
    info = _info(fixture_models, "gemma4-shared_kv")
    p = plan(info, 4096)
    assert p.n_layers_shared == 2
    assert (p.n_layers_full, p.n_layers_swa) == (1, 3)
    assert p.kv_bytes == 1 * 4096 * 256 + 3 * 768 * 128


def test_recurrent_state_is_constant(fixture_models: dict[str, Path]) -> None:
    info = _info(fixture_models, "qwen35")
    small, big = plan(info, 1024), plan(info, 8192)
    # 3 Gated DeltaNet layers: conv (4-1) x (128 + 2x2x32) + state 32 x 128, f32.
    assert small.state_bytes == big.state_bytes == 3 * (3 * 256 + 32 * 128) * 4
    assert small.n_layers_recurrent == 3
    assert big.kv_bytes == 8192 * 512  # the one attention layer
    assert plan(info, 1024, n_seq=2).state_bytes == 2 * small.state_bytes


def test_quantized_v_needs_flash_attention(fixture_models: dict[str, Path]) -> None:
    info = _info(fixture_models, "llama")
    with pytest.raises(ValueError, match="flash attention"):
        plan(info, 1024, kv_type="q8_0", flash_attn=False)
    assert plan(info, 1024, kv_type="q4_0").kv_bytes == 4 * 2 * 36 * 1024


def test_mla_caches_no_v() -> None:
    meta = {
        "general.architecture": "deepseek2",
        "deepseek2.block_count": 2,
        "deepseek2.embedding_length": 256,
        "deepseek2.context_length": 4096,
        "deepseek2.attention.head_count": 8,
        "deepseek2.attention.head_count_kv": 1,
        "deepseek2.attention.key_length": 576,  # kv_lora_rank 512 + rope 64
        "deepseek2.attention.value_length": 512,
        "deepseek2.attention.key_length_mla": 192,
        "deepseek2.attention.value_length_mla": 128,
    }
    info = ModelInfo(Path("x.gguf"), "mla", "deepseek2", 0, "F16", 4096, 2, 0, None, None, meta, [])
    p = plan(info, 1024)
    assert p.v_bytes == 0
    assert p.kv_bytes == 2 * 1024 * 576 * 2  # GLM-4.7-Flash: 47 x 576 x 2 B per token


def test_unknown_arch_is_a_clear_error() -> None:
    meta = {"general.architecture": "foo", "foo.block_count": 2, "foo.embedding_length": 8}
    info = ModelInfo(Path("x.gguf"), "x", "foo", 0, "F16", None, 2, 0, None, None, meta, [])
    with pytest.raises(UnsupportedArch, match="'foo'"):
        plan(info, 1024)


def test_max_context(fixture_models: dict[str, Path]) -> None:
    info = _info(fixture_models, "llama")
    weights = plan(info, 256).weights_bytes
    budget = weights + 3 * MIB + 1000
    n = max_context(info, budget)
    assert n == 3072  # 1 KiB per token
    assert plan(info, n).total_bytes <= budget < plan(info, n + 256).total_bytes
    assert max_context(info, weights) == 0
    assert max_context(info, 10 * 1024**3) == info.n_ctx_train
    # q8_0 halves the cache (almost), so more context fits in the same budget.
    assert max_context(info, budget, kv_type="q8_0") > n


def test_plan_frame(fixture_models: dict[str, Path]) -> None:
    infos = [_info(fixture_models, n) for n in ("llama", "qwen35")]
    frame = plan_frame(infos, [1024, 4096])
    assert frame.height == 4
    for col in (
        "model",
        "ctx",
        "kv_type",
        "swa_full",
        "weights_bytes",
        "kv_bytes",
        "state_bytes",
        "total_bytes",
        "kv_bytes_per_token",
    ):
        assert col in frame.columns
    assert frame.filter(frame["arch"] == "qwen35")["state_bytes"].n_unique() == 1


def test_figure(fixture_models: dict[str, Path]) -> None:
    from workbench.plots.memory import memory_breakdown, memory_vs_context

    infos = [_info(fixture_models, n) for n in ("llama", "gemma4", "qwen35")]
    frame = plan_frame(infos, [512, 2048, 8192])
    fig = memory_vs_context(frame, budget_gib=0.5)
    assert len(fig.data) == 3
    assert list(fig.data[0].x) == [512, 2048, 8192]
    assert len(memory_breakdown(frame, ctx=2048).data) == 3


def test_cli_json(fixture_models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(fixture_models[n]) for n in ("gemma4", "qwen35")]
    rc = main(
        [
            "memory",
            "-m",
            paths[0],
            "-m",
            paths[1],
            "--ctx",
            "1024",
            "--ctx",
            "4096",
            "--kv-type",
            "q8_0",
            "--budget",
            "1",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    rows = json.loads(out)
    assert len(rows) == 4
    for row in rows:
        assert row["kv_type"] == "q8_0" and row["swa_full"] is False
        assert row["total_bytes"] == row["weights_bytes"] + row["kv_bytes"] + row["state_bytes"]
        assert row["max_ctx"] == 8192
    assert rows[2]["state_bytes"] > 0 and rows[0]["state_bytes"] == 0


def test_cli_unknown_arch_others_still_print(
    fixture_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gguf
    import numpy as np

    odd = tmp_path / "odd.gguf"
    w = gguf.GGUFWriter(str(odd), "foo")
    w.add_block_count(2)
    w.add_embedding_length(8)
    w.add_tensor("x", np.zeros(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    rc = main(["memory", "-m", str(odd), "-m", str(fixture_models["llama"]), "--ctx", "2048"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "llama" in cap.out and "2.00 MiB" in cap.out  # 2048 tokens x 1 KiB
    err = [line for line in cap.err.splitlines() if "odd" in line]
    assert len(err) == 1 and "'foo'" in err[0]


@pytest.mark.slow
def test_cli_bundled_models(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["memory", "--budget", "0.5", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert {r["model"] for r in rows} >= {"gemma-3-270m", "smollm2-135m-instruct"}
    gemma = [r for r in rows if r["model"] == "gemma-3-270m"]
    assert all(r["n_layers_swa"] > 0 for r in gemma)
    assert all(0 < r["max_ctx"] <= 32768 for r in rows)


# --------------------------------------------------------------------------- llama.cpp

_CONFIGS = [
    ProbeConfig(n_ctx=ctx, swa_full=swa_full, flash_attn=fa, type_k=t, type_v=t)
    for ctx in (256, 3000, 16384)
    for swa_full in (False, True)
    for t, fa in (("f16", False), ("q8_0", None))
] + [ProbeConfig(n_ctx=3000, n_batch=128, n_ubatch=64, flash_attn=True)]


def _assert_agrees(path: Path, configs: list[ProbeConfig]) -> None:
    info = read_model_info(path)
    run = probe_memory(path, configs)
    assert run.returncode == 0, run.log[-2000:]
    assert len(run.results) == len(configs)
    for r in run.results:
        assert r.error is None, r.error
        p = plan(info, r.config.n_ctx, **plan_kwargs(r.config))
        planned = tuple(mib2(b) for b in (p.kv_bytes - p.kv_bytes_swa, p.kv_bytes_swa) if b)
        assert r.kv_mib == planned, r.config
        assert r.rs_mib == mib2(p.state_bytes), r.config


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["llama", "qwen3", "glm4", "gemma3", "gemma4", "gemma4-moe", "gemma4-shared_kv", "qwen35"],
)
def test_planner_matches_llama_cpp(fixture_models: dict[str, Path], name: str) -> None:
    """KV and recurrent-state buffers equal llama.cpp's own log (MiB, 2 decimals) for
    several context lengths, swa_full on and off, f16 without and q8_0 with flash
    attention, and a small ubatch (which shrinks the sliding-window cache)."""
    _assert_agrees(fixture_models[name], _CONFIGS)


@pytest.mark.slow
def test_planner_matches_llama_cpp_bundled(gemma: Path, smollm: Path) -> None:
    configs = [ProbeConfig(n_ctx=c) for c in (2048, 8192)]
    configs.append(ProbeConfig(n_ctx=8192, swa_full=True, flash_attn=False))
    for path in (gemma, smollm):
        _assert_agrees(path, configs)


def test_contexts_within_the_trained_context() -> None:
    from workbench.models.memory import contexts_within

    ctxs = [1024, 4096, 16384, 32768]
    assert contexts_within(8192, ctxs) == [1024, 4096, 8192]
    assert contexts_within(32768, ctxs) == ctxs
    assert contexts_within(None, ctxs) == ctxs
    assert contexts_within(4096, [1024, 4096, 8192]) == [1024, 4096]


def test_bundled_models_are_planned_by_registry_name_up_to_their_trained_context() -> None:
    from workbench.models.memory import context_table, contexts_within
    from workbench.models.registry import default_models
    from workbench.plots.memory import gib_table, memory_vs_context

    refs = default_models()
    trained = {r.name: r.info().n_ctx_train for r in refs}
    ctxs = [1024, 8192, 32768]
    frame = plan_frame(refs, ctxs, within_trained=True)
    assert set(frame["model"]) == set(trained)  # registry names, not general.name
    for name, n_train in trained.items():
        assert frame.filter(frame["model"] == name)["ctx"].to_list() == contexts_within(
            n_train, ctxs
        )
    smollm = next(n for n in trained if n.startswith("smollm2"))
    assert max(frame.filter(frame["model"] == smollm)["ctx"]) == 8192  # trained to 8k
    fig = memory_vs_context(frame)
    assert {t.name: max(t.x) for t in fig.data}[smollm] == 8192
    assert set(context_table(refs, [1.0])["model"]) == set(trained)

    table = gib_table(frame.select("model", "ctx", "weights_bytes", "total_bytes"))
    assert table.columns == ["model", "ctx", "weights_gib", "total_gib"]
    row = table.row(0, named=True)
    assert row["total_gib"] == round(frame["total_bytes"][0] / 1024**3, 3)
    assert 0 < row["weights_gib"] < 1
