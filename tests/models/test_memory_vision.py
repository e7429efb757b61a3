"""The planner for a vision model: the projector's weights and the image tokens' KV, checked
against what llama.cpp allocates for the fixture pair (the probe layer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.errors import InputError
from workbench.gguf import read_model_info
from workbench.llama.log import BUFFER_RESOLUTION_BYTES
from workbench.llama.probe import ProbeConfig, probe
from workbench.models.memory import plan
from workbench.models.projectors import check_budget, image_tokens, projector_type
from workbench.testing.fixtures import projector_hparams, write_fixture, write_projector_fixture


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("vlm")
    return write_fixture("llama", d / "m.gguf"), write_projector_fixture(d / "mmproj-m.gguf")


def test_the_plan_matches_llama_cpps_allocation(pair: tuple[Path, Path]) -> None:
    model, proj = pair
    info, pinfo = read_model_info(model), read_model_info(proj)
    assert projector_type(pinfo) == "mlp"
    per_image = image_tokens(pinfo)
    assert per_image == projector_hparams().image_tokens == 16
    ctx = 500  # with 2 images: 532 cells asked for, padded past one 256-cell step
    p = plan(info, ctx, projector=pinfo, image_tokens=2 * per_image)
    text_only = plan(info, ctx)
    assert p.n_ctx == 768 and text_only.n_ctx == 512, "the images need more cells"
    assert p.total_bytes == text_only.weights_bytes + p.kv_bytes + p.projector_bytes
    run = probe(model, [ProbeConfig(n_ctx=ctx + 2 * per_image, mmproj=str(proj))])
    assert run.error is None, run.error
    (res,) = run.results
    assert res.error is None and res.buffers is not None
    assert abs(res.buffers.kv_bytes - p.kv_bytes) < BUFFER_RESOLUTION_BYTES
    assert res.projector_bytes is not None
    assert abs(res.projector_bytes - p.projector_bytes) < BUFFER_RESOLUTION_BYTES


def test_budgets() -> None:
    """Headers with just the keys the budget reads (a Gemma 4 projector is large)."""

    class Info:
        def __init__(self, md: dict[str, object]) -> None:
            self.metadata = md

    g4 = Info({"clip.vision.projector_type": "gemma4v"})
    assert image_tokens(g4, None) == 280 and image_tokens(g4, 560) == 560  # type: ignore[arg-type]
    check_budget(g4, 1120)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="outside gemma4v's budget \\(70 to 1120\\)"):
        check_budget(g4, 50)  # type: ignore[arg-type]
    assert image_tokens(Info({"clip.projector_type": "gemma3"})) == 256  # type: ignore[arg-type]
    assert image_tokens(Info({"clip.projector_type": "qwen2vl_merger"})) is None  # type: ignore[arg-type]


def test_memory_cli_plans_the_projector_and_images(pair: tuple[Path, Path]) -> None:
    import json
    import subprocess
    import sys

    model, proj = pair
    cmd = [sys.executable, "-m", "workbench", "memory", "-m", str(model), "--ctx", "500"]
    out = subprocess.run([*cmd, "--images", "2", "--json"], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    pinfo = read_model_info(proj)
    expect = plan(read_model_info(model), 500, projector=pinfo, image_tokens=32)
    assert row["projector_bytes"] == expect.projector_bytes > 0
    assert row["image_tokens"] == 32 and row["kv_bytes"] == expect.kv_bytes
    assert row["total_bytes"] == expect.total_bytes
