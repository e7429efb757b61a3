"""Twins of vision models come with a twin of their projector (from its header alone), so
the image test and the planner work before anything is downloaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fake_hub import FakeHub
from workbench.gguf import read_model_info
from workbench.models.registry import twin_ref
from workbench.speed import bench
from workbench.testing.fixtures import projector_hparams, write_fixture, write_projector_fixture


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("vlm")
    write_projector_fixture(d / "mmproj-tiny-F16.gguf")
    return write_fixture("llama", d / "tiny-vlm-F32.gguf")


def _same_layout(twin: Path, source: Path) -> None:
    t, s = read_model_info(twin), read_model_info(source)
    assert t.is_twin and not s.is_twin and t.arch == s.arch == "clip"
    assert [(x.name, x.shape) for x in t.tensors] == [(x.name, x.shape) for x in s.tensors]


def test_a_local_twin_has_its_projector_and_runs_the_image_test(pair: Path) -> None:
    ref = twin_ref(f"twin:{pair}")
    assert ref.source == "twin" and ref.mmproj is not None
    _same_layout(Path(ref.mmproj), pair.with_name("mmproj-tiny-F16.gguf"))
    (row,) = bench([ref], n_prompt=0, n_gen=0, n_images=1, reps=2, store=False).iter_rows(
        named=True
    )
    assert row["error"] is None and row["twin"] is True
    assert row["image_tokens"] == projector_hparams().image_tokens and row["tps_mean"] > 0


@pytest.fixture()
def vision_hub(pair: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    fh = FakeHub()
    fh.add("acme/vlm-GGUF", "tiny-vlm-F32.gguf", pair)
    fh.add("acme/vlm-GGUF", "mmproj-tiny-F16.gguf", pair.with_name("mmproj-tiny-F16.gguf"))
    fh.add("acme/text-GGUF", "tiny-F32.gguf", pair)
    with fh:
        monkeypatch.setenv("HF_ENDPOINT", fh.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
        monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
        yield fh


def test_a_hub_twin_twins_the_projector_from_its_header(vision_hub: FakeHub, pair: Path) -> None:
    ref = twin_ref("twin:acme/vlm-GGUF:tiny-vlm-F32.gguf")
    assert ref.mmproj is not None
    _same_layout(Path(ref.mmproj), pair.with_name("mmproj-tiny-F16.gguf"))
    projector = pair.with_name("mmproj-tiny-F16.gguf").stat().st_size
    sent = [q for q in vision_hub.downloads() if q.sent]
    assert sent and all(q.range for q in sent), "header bytes only, by Range requests"
    assert sum(q.sent for q in sent) < pair.stat().st_size + projector
    assert twin_ref("twin:acme/text-GGUF:tiny-F32.gguf").mmproj is None
