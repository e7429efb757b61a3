"""Shared fixtures: the two real bundled models, and an isolated data directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.models.registry import bundled_models, gemma_path, smollm_path


@pytest.fixture(autouse=True, scope="session")
def _isolated_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never write runs or votes into the checkout's data/ directory."""
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_DATA", str(tmp_path_factory.mktemp("workbench-data")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def gemma() -> Path:
    """Gemma 3 270M Q4_K_M (base model, no chat template)."""
    p = gemma_path()
    assert p is not None, "bundled Gemma missing: run `make models`"
    return p


@pytest.fixture(scope="session")
def smollm() -> Path:
    """SmolLM2-135M-Instruct Q4_1 (chat template)."""
    p = smollm_path()
    assert p is not None, "bundled SmolLM2 missing: run `make models`"
    return p


@pytest.fixture(scope="session")
def bundled() -> list[str]:
    """Registry names of the bundled models."""
    return [r.name for r in bundled_models()]


def _patch_architecture(src: Path, dst: Path, new_arch: bytes) -> Path:
    """Copy a GGUF file, replacing the general.architecture value with a same-length name."""
    data = bytearray(src.read_bytes())
    key = b"general.architecture"
    i = data.index(key) + len(key)
    # value: u32 type (8 = string), u64 length, bytes
    length = int.from_bytes(data[i + 4 : i + 12], "little")
    assert length == len(new_arch), "replacement must keep the length"
    data[i + 12 : i + 12 + length] = new_arch
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory, smollm: Path) -> dict[str, Path]:
    """Real bad inputs made from the bundled SmolLM2 file."""
    tmp_path = tmp_path_factory.mktemp("bad-files")
    truncated = tmp_path / "truncated.gguf"
    with smollm.open("rb") as f:
        truncated.write_bytes(f.read(smollm.stat().st_size // 2))
    corrupt = tmp_path / "corrupt.gguf"
    head = bytearray(smollm.read_bytes()[:4096])
    head[8:24] = b"\xff" * 16  # implausible tensor and key counts
    corrupt.write_bytes(bytes(head))
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("this is not a model\n")
    unknown = _patch_architecture(smollm, tmp_path / "unknown-arch.gguf", b"zzzzz")
    return {
        "missing": tmp_path / "does-not-exist.gguf",
        "truncated": truncated,
        "corrupt": corrupt,
        "not_gguf": not_gguf,
        "unknown_arch": unknown,
    }


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
"""Debian's Chromium (Playwright's own browser download does not work here)."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture()
def browser() -> Iterator[Any]:
    """A headless Chromium driven by Playwright. A missing browser fails the test: `make
    test` installs it, so its absence is a broken set-up, not a reason to skip."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: `make browser` installs it"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
