"""Ollama and LM Studio discovery on store layouts built from the bundled GGUF files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.gguf import read_model_info
from workbench.models import registry
from workbench.models.registry import file_sha256
from workbench.models.stores import lmstudio_models, ollama_models


def _manifest(root: Path, name: str, layers: list[dict[str, object]]) -> None:
    p = root / "manifests" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    config = {"mediaType": "application/vnd.docker.container.image.v1+json",
              "digest": "sha256:" + "0" * 64, "size": 2}  # fmt: skip
    p.write_text(json.dumps({"schemaVersion": 2,
                             "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                             "config": config, "layers": layers}))  # fmt: skip


@pytest.fixture()
def ollama_root(tmp_path: Path, smollm: Path, gemma: Path) -> Path:
    """Ollama's documented layout: manifests/<registry>/<namespace>/<model>/<tag> + blobs."""
    root = tmp_path / "ollama" / "models"
    (root / "blobs").mkdir(parents=True)
    layers = {}
    for src in (smollm, gemma):
        digest = f"sha256:{file_sha256(src)}"
        (root / "blobs" / digest.replace(":", "-")).symlink_to(src)
        layers[src] = {"mediaType": "application/vnd.ollama.image.model", "digest": digest,
                       "size": src.stat().st_size}  # fmt: skip
    template = {"mediaType": "application/vnd.ollama.image.template",
                "digest": "sha256:" + "1" * 64, "size": 10}  # fmt: skip
    _manifest(root, "registry.ollama.ai/library/smollm2/135m", [layers[smollm], template])
    _manifest(root, "registry.ollama.ai/someone/tiny-gemma/latest", [layers[gemma]])
    _manifest(root, "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF/Q4_1", [layers[smollm]])
    missing = {**layers[smollm], "digest": "sha256:" + "9" * 64}
    _manifest(root, "registry.ollama.ai/library/gone/latest", [missing])  # blob deleted
    _manifest(root, "registry.ollama.ai/library/notes/latest", [template])  # no model layer
    (root / "manifests" / "registry.ollama.ai" / "library" / "broken").mkdir()
    (root / "manifests" / "registry.ollama.ai" / "library" / "broken" / "x").write_text("{")
    return root


@pytest.fixture()
def lmstudio_root(tmp_path: Path, smollm: Path, gemma: Path) -> Path:
    """LM Studio's documented layout: models/<publisher>/<repository>/<file>.gguf."""
    root = tmp_path / "lmstudio" / "models"
    repo = root / "lmstudio-community" / "SmolLM2-135M-Instruct-GGUF"
    repo.mkdir(parents=True)
    (repo / "SmolLM2-135M-Instruct-Q4_1.gguf").symlink_to(smollm)
    (repo / "mmproj-SmolLM2-F16.gguf").write_bytes(b"GGUF projector")
    big = root / "google" / "gemma-3-270m-GGUF"
    big.mkdir(parents=True)
    (big / "gemma-3-270m-Q4_K_M-00001-of-00002.gguf").symlink_to(gemma)
    (big / "gemma-3-270m-Q4_K_M-00002-of-00002.gguf").write_bytes(b"part two")
    (root / "loose.gguf").symlink_to(smollm)  # not publisher/repo/file: LM Studio ignores it
    return root


def test_ollama_models_are_named_as_ollama_names_them(ollama_root: Path, smollm: Path) -> None:
    refs = {r.name: r for r in ollama_models([ollama_root])}
    assert set(refs) == {
        "smollm2:135m",
        "someone/tiny-gemma:latest",
        "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_1",
    }
    assert all(r.source == "ollama" for r in refs.values())
    info = read_model_info(refs["smollm2:135m"].path)
    assert info.arch == "llama" and info.size_bytes == smollm.stat().st_size
    assert read_model_info(refs["someone/tiny-gemma:latest"].path).arch == "gemma3"


def test_lmstudio_models_are_named_by_their_path(lmstudio_root: Path) -> None:
    refs = {r.name: r for r in lmstudio_models([lmstudio_root])}
    assert set(refs) == {
        "lmstudio-community/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf",
        "google/gemma-3-270m-GGUF/gemma-3-270m-Q4_K_M-00001-of-00002.gguf",
    }
    assert all(r.source == "lmstudio" for r in refs.values())
    for r in refs.values():
        assert read_model_info(r.path).arch in ("llama", "gemma3")


def test_registry_lists_and_resolves_store_models(
    ollama_root: Path, lmstudio_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OLLAMA_MODELS", str(ollama_root))
    monkeypatch.setenv("LMSTUDIO_MODELS_DIR", str(lmstudio_root))
    monkeypatch.setenv("WORKBENCH_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setattr(registry, "SOURCES", [
        s if s.__name__ != "hf_cache_models" else (lambda: []) for s in registry.SOURCES
    ])  # fmt: skip
    (tmp_path / "none.toml").write_text("")
    names = {r.name: r.source for r in registry.list_models()}
    assert names["smollm2:135m"] == "ollama"
    lms = "lmstudio-community/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf"
    assert names[lms] == "lmstudio"
    # Names with "/" (and a .gguf suffix) resolve to the store entry, not a missing path.
    assert registry.resolve("hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_1").source == "ollama"
    assert registry.resolve(lms).source == "lmstudio"
    assert registry.resolve("smollm2:135m").path.startswith(str(ollama_root))
    assert registry.resolve("/no/such/file.gguf").source == "path"
