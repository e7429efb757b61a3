"""Tiny random-weight GGUF models, one per fixture architecture and variant, written once
per session (workbench.testing.write_fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.testing import VARIANTS, write_fixture

FIXTURE_IDS = [f"{a}-{v}" if v else a for a, vs in VARIANTS.items() for v in vs]


@pytest.fixture(scope="session")
def fixture_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fixture id ("gemma4", "gemma4-moe", "qwen35", ...) -> .gguf path."""
    root = tmp_path_factory.mktemp("fixture-models")
    out = {}
    for arch, variants in VARIANTS.items():
        for v in variants:
            name = f"{arch}-{v}" if v else arch
            out[name] = write_fixture(arch, root / f"{name}.gguf", variant=v)
    return out
