"""One tensor layout per architecture: a tiny fixture and a full-size catalog twin of the
same architecture carry the same tensors (by name and rank) and the same keys."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from workbench.gguf import TensorInfo, read_model_info
from workbench.models.catalog import Hparams
from workbench.models.layouts import LAYOUTS, layout
from workbench.models.twin import catalog_headers
from workbench.testing import FIXTURE_ARCHS, write_fixture


def _pattern(tensors: Iterable[TensorInfo]) -> dict[str, int]:
    """Tensor name with its layer number stripped -> number of dimensions (the output
    matrix left out: whether it is tied to the embeddings is a hyperparameter)."""
    names = {re.sub(r"^blk\.\d+\.", "blk.N.", t.name): len(t.shape) for t in tensors}
    names.pop("output.weight", None)
    return names


@pytest.mark.parametrize(
    ("arch", "variant", "twin"),
    [
        ("gemma4", "moe", "gemma-4-26b-a4b"),  # experts, K = V on global layers
        ("gemma4", "shared_kv", "gemma-4-e2b"),  # per-layer embeddings, shared KV
        ("qwen35", None, "qwen3.5-0.8b"),  # Gated DeltaNet + gated attention
        ("glm4", None, "glm-4-9b"),  # Q/K/V biases, fused gate+up
    ],
)
def test_fixture_and_twin_share_one_layout(
    arch: str, variant: str | None, twin: str, tmp_path: Path
) -> None:
    fixture = read_model_info(write_fixture(arch, tmp_path / "f.gguf", variant=variant))
    head = catalog_headers(twin)
    assert _pattern(fixture.tensors) == _pattern(head.tensors)
    fixture_keys = {k for k in fixture.metadata if k.startswith(f"{arch}.")}
    assert fixture_keys == {e.key for e in head.entries if e.key.startswith(f"{arch}.")}


def test_gemma4_expert_down_scale_is_in_both(tmp_path: Path) -> None:
    # The tensor that once existed in the twins only.
    fixture = read_model_info(write_fixture("gemma4", tmp_path / "m.gguf", variant="moe"))
    twin = catalog_headers("gemma-4-26b-a4b")
    for tensors in (fixture.tensors, twin.tensors):
        assert "blk.0.ffn_down_exps.scale" in {t.name for t in tensors}


def test_every_fixture_architecture_has_a_layout() -> None:
    assert set(FIXTURE_ARCHS) <= set(LAYOUTS)
    with pytest.raises(ValueError, match="no tensor layout for architecture 'mamba'"):
        layout(Hparams("mamba", 256, 512, 64, 1, 1, 1, 64, 0, True, 1e4))
