"""Image prompts in process, through llama.cpp's multimodal library (mtmd): a tiny text
fixture and a tiny projector fixture (random weights, LLaVA 1.5's real tensor layout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.images import write_images
from workbench.backends.base import Done, Failed, GenerationConfig, Prompt
from workbench.backends.llama_cpp import LlamaCppBackend
from workbench.images import load_images
from workbench.models.registry import resolve
from workbench.runner import compare
from workbench.testing.fixtures import projector_hparams, write_fixture, write_projector_fixture

CFG = GenerationConfig(max_tokens=6, seed=3, temperature=0, n_ctx=512, n_threads=2)
N_IMAGE = projector_hparams().image_tokens


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vision model as a user keeps one: the model and its projector side by side."""
    d = tmp_path_factory.mktemp("vlm")
    write_projector_fixture(d / "mmproj-tiny-F16.gguf")
    return write_fixture("llama", d / "tiny-vlm-F32.gguf")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_images(tmp_path_factory.mktemp("images"))


def test_the_pair_answers_an_image_prompt_with_image_figures(
    pair: Path, files: dict[str, Path], tmp_path: Path
) -> None:
    ref = resolve(str(pair))
    assert ref.mmproj == str(pair.with_name("mmproj-tiny-F16.gguf")), "found beside it"
    df = compare(
        "What is in the image?", [ref], images=[files["png"]], store=False,
        max_tokens=6, seed=3, temperature=0, n_ctx=512, n_threads=2,
    )  # fmt: skip
    (row,) = df.iter_rows(named=True)
    assert row["error"] is None, row["error"]
    assert row["finish_reason"] in ("stop", "length") and row["completion_tokens"] >= 1
    assert row["image_tokens"] == N_IMAGE
    assert row["image_encode_s"] is not None and row["image_encode_s"] > 0
    assert row["prompt_tokens"] > N_IMAGE, "text tokens and image tokens"
    assert row["image_size"] == "32x20" and row["image_budget"] is None


def test_two_images_and_a_text_prompt_on_the_same_worker(
    pair: Path, files: dict[str, Path]
) -> None:
    backend = LlamaCppBackend(pair, mmproj=pair.with_name("mmproj-tiny-F16.gguf"))
    try:
        one = Prompt("Describe it.", images=load_images([files["jpeg"]]))
        two = Prompt("Describe them.", images=load_images([files["jpeg"], files["webp"]]))
        got = {}
        for name, prompt in (("one", one), ("two", two), ("text", Prompt("Describe it."))):
            *_, last = backend.stream(prompt, CFG)
            assert isinstance(last, Done), getattr(last, "message", "")
            got[name] = last.completion
        assert got["one"].image_tokens == N_IMAGE
        assert got["two"].image_tokens == 2 * N_IMAGE
        assert got["two"].extra["image_tokens_each"] == [N_IMAGE, N_IMAGE]
        assert got["text"].image_tokens is None and got["text"].image_encode_s is None
        # "Describe them." and "Describe it." differ by a word: the second image's tokens
        assert got["two"].prompt_tokens - got["one"].prompt_tokens >= N_IMAGE
        assert (
            got["text"].prompt_tokens == got["one"].prompt_tokens - N_IMAGE - 1
        )  # its marker's newline
    finally:
        backend.close()


def test_a_projector_for_another_width_is_one_line(tmp_path: Path, files: dict[str, Path]) -> None:
    model = write_fixture("llama", tmp_path / "m.gguf")
    wrong = write_projector_fixture(tmp_path / "mmproj-wide.gguf", n_embd_text=64)
    backend = LlamaCppBackend(model, mmproj=wrong)
    try:
        prompt = Prompt("What?", images=load_images([files["png"]]))
        events = list(backend.stream(prompt, CFG))
    finally:
        backend.close()
    assert len(events) == 1 and isinstance(events[0], Failed)
    msg = events[0].message
    assert "\n" not in msg and "mismatch between text model (n_embd = 128) and mmproj" in msg
