"""The bench's image test: a projector encoding images, timed like llama-bench's tests;
the rate is images per second."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.speed import BenchError, bench, bench_cases
from workbench.testing.fixtures import projector_hparams, write_fixture, write_projector_fixture


def test_image_cases_once_per_setting() -> None:
    cases = bench_cases(n_prompt=8, n_gen=0, depths=(0, 64), n_images=3, image_tokens=280)
    assert [c.label for c in cases] == ["pp8", "img3 @ 280 tok", "pp8 @ d64"]
    assert cases[1].units == 3 and cases[0].units == 8
    assert [c.label for c in bench_cases(n_prompt=0, n_gen=0, n_images=1)] == ["img1"]
    with pytest.raises(BenchError, match="nothing to measure"):
        bench_cases(n_prompt=0, n_gen=0)
    with pytest.raises(BenchError, match="image_tokens must be at least 1"):
        bench_cases(n_images=1, image_tokens=0)


def test_the_image_test_measures_images_per_second(tmp_path: Path, smollm: Path) -> None:
    d = tmp_path / "vlm"
    write_projector_fixture(d / "mmproj-tiny-F16.gguf")
    model = write_fixture("llama", d / "tiny-vlm.gguf")
    frame = bench([str(model), str(smollm)], n_prompt=0, n_gen=0, n_images=2, reps=3,
                  store=False)  # fmt: skip
    vision, text_only = frame.iter_rows(named=True)
    assert vision["error"] is None and vision["test"] == "img"
    assert vision["n_images"] == 2 and vision["image_tokens"] == projector_hparams().image_tokens
    assert len(vision["samples_ns"]) == 3 and vision["tps_mean"] > 0
    # images/s: two images per repetition over its wall time
    assert vision["samples_tps"][0] == pytest.approx(2 / (vision["samples_ns"][0] / 1e9))
    assert text_only["test"] == "img" and text_only["tps_mean"] is None
    assert "text-only model (no projector)" in text_only["error"]
