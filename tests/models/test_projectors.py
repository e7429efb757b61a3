"""Vision projectors found beside their models in every layout, pulled with them, and
named in workbench.toml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fake_hub import COMMIT, FakeHub
from workbench.models import hub, registry
from workbench.models.projectors import is_projector, pick_projector, projector_beside
from workbench.models.registry import directory_models, file_sha256
from workbench.models.stores import lmstudio_models, ollama_models

PROJECTOR = b"GGUF projector bytes"


def test_which_projector_goes_with_a_model() -> None:
    assert is_projector("mmproj-F16.gguf") and is_projector("x/Gemma-4-MMPROJ-f32.gguf")
    assert not is_projector("gemma-4-E4B-it-Q4_K_M.gguf") and not is_projector("mmproj.txt")
    model = "gemma-4-E4B-it-Q4_K_M.gguf"
    assert pick_projector(["mmproj-F32.gguf", "mmproj-BF16.gguf", "mmproj-F16.gguf"],
                          model) == "mmproj-F16.gguf"  # fmt: skip
    # One that names the model wins over precision; non-projectors are ignored.
    named = "mmproj-gemma-4-E4B-it-f32.gguf"
    assert pick_projector(["mmproj-other-F16.gguf", named, model], model) == named
    assert pick_projector([model, "README.md"], model) is None


@pytest.fixture()
def vision_dir(tmp_path: Path, smollm: Path) -> Path:
    d = tmp_path / "models" / "vlm"
    d.mkdir(parents=True)
    (d / "SmolVLM-Q4_1.gguf").symlink_to(smollm)
    (d / "mmproj-SmolVLM-F32.gguf").write_bytes(PROJECTOR)
    (d / "mmproj-SmolVLM-F16.gguf").write_bytes(PROJECTOR)
    text = tmp_path / "models" / "text"
    text.mkdir()
    (text / "plain.gguf").symlink_to(smollm)
    return tmp_path / "models"


def test_a_directory_lists_the_model_with_its_projector(vision_dir: Path) -> None:
    refs = {r.name: r for r in directory_models([vision_dir])}
    assert set(refs) == {"smolvlm-q4_1", "plain"}, "projectors are not models"
    assert refs["smolvlm-q4_1"].mmproj == str(vision_dir / "vlm" / "mmproj-SmolVLM-F16.gguf")
    assert refs["plain"].mmproj is None
    path = registry.resolve(str(vision_dir / "vlm" / "SmolVLM-Q4_1.gguf"))
    assert path.source == "path" and path.mmproj == refs["smolvlm-q4_1"].mmproj
    assert projector_beside(vision_dir / "text" / "plain.gguf") is None


def test_lmstudio_and_ollama_layouts(tmp_path: Path, smollm: Path) -> None:
    lms = tmp_path / "lms"
    repo = lms / "pub" / "SmolVLM-GGUF"
    repo.mkdir(parents=True)
    (repo / "SmolVLM-Q4_1.gguf").symlink_to(smollm)
    (repo / "mmproj-SmolVLM-F16.gguf").write_bytes(PROJECTOR)
    (ref,) = lmstudio_models([lms])
    assert ref.name == "pub/SmolVLM-GGUF/SmolVLM-Q4_1.gguf"
    assert ref.mmproj == str(repo / "mmproj-SmolVLM-F16.gguf")

    root = tmp_path / "ollama"
    (root / "blobs").mkdir(parents=True)
    model_digest = f"sha256:{file_sha256(smollm)}"
    (root / "blobs" / model_digest.replace(":", "-")).symlink_to(smollm)
    proj = root / "blobs" / ("sha256-" + "a" * 64)
    proj.write_bytes(PROJECTOR)
    layers = [
        {"mediaType": "application/vnd.ollama.image.model", "digest": model_digest, "size": 1},
        {"mediaType": "application/vnd.ollama.image.projector", "digest": "sha256:" + "a" * 64,
         "size": len(PROJECTOR)},
    ]  # fmt: skip
    for name, lay in (("vlm/latest", layers), ("text/latest", layers[:1])):
        mf = root / "manifests" / "registry.ollama.ai" / "library" / name
        mf.parent.mkdir(parents=True, exist_ok=True)
        mf.write_text(json.dumps({"schemaVersion": 2, "layers": lay}))
    refs = {r.name: r for r in ollama_models([root])}
    assert refs["vlm:latest"].mmproj == str(proj)
    assert refs["text:latest"].mmproj is None


@pytest.fixture()
def vision_hub(smollm: Path) -> Iterator[FakeHub]:
    fh = FakeHub()
    fh.add("acme/vlm-GGUF", "SmolVLM-Q4_1.gguf", smollm)
    fh.add("acme/vlm-GGUF", "mmproj-SmolVLM-F32.gguf", PROJECTOR + b"32")
    fh.add("acme/vlm-GGUF", "mmproj-SmolVLM-F16.gguf", PROJECTOR)
    fh.add("acme/text-GGUF", "Text-Q4_1.gguf", smollm)
    with fh:
        yield fh


def test_pull_fetches_the_projector_and_the_cache_lists_it(
    vision_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hf"
    r = hub.pull("acme/vlm-GGUF:Q4_1", endpoint=vision_hub.url, cache_dir=cache)
    snap = cache / "models--acme--vlm-GGUF" / "snapshots" / COMMIT
    assert r.mmproj is not None and r.mmproj.repo_path == "mmproj-SmolVLM-F16.gguf"
    assert r.mmproj.local_path == snap / "mmproj-SmolVLM-F16.gguf"
    assert r.mmproj.local_path.read_bytes() == PROJECTOR
    fetched = [q.path for q in vision_hub.downloads()]
    assert len(fetched) == 2, "the model and one projector, not the F32 one"
    text = hub.pull("acme/text-GGUF", endpoint=vision_hub.url, cache_dir=cache)
    assert text.mmproj is None

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    refs = {x.name: x for x in registry.hf_cache_models()}
    assert set(refs) == {"acme/vlm-GGUF:SmolVLM-Q4_1", "acme/text-GGUF:Text-Q4_1"}
    assert refs["acme/vlm-GGUF:SmolVLM-Q4_1"].mmproj == str(snap / "mmproj-SmolVLM-F16.gguf")
    assert refs["acme/text-GGUF:Text-Q4_1"].mmproj is None

    offline = hub.pull("acme/vlm-GGUF:Q4_1", cache_dir=cache, offline=True)
    assert offline.offline and offline.mmproj is not None
    assert offline.mmproj.local_path == r.mmproj.local_path


def test_workbench_toml_names_a_projector_and_models_json_shows_it(
    tmp_path: Path, smollm: Path, vision_dir: Path
) -> None:
    proj = tmp_path / "elsewhere" / "projector.gguf"
    proj.parent.mkdir()
    proj.write_bytes(PROJECTOR)
    cfg = tmp_path / "workbench.toml"
    cfg.write_text(f"""
[[models]]
name = "named-vlm"
path = "{smollm}"
mmproj = "elsewhere/projector.gguf"

[[models]]
name = "found-vlm"
path = "{vision_dir / "vlm" / "SmolVLM-Q4_1.gguf"}"
""")
    none = str(tmp_path / "none")
    env = {**os.environ, "WORKBENCH_CONFIG": str(cfg), "HF_HUB_CACHE": str(tmp_path / "hf"),
           "OLLAMA_MODELS": none, "LMSTUDIO_MODELS_DIR": none}  # fmt: skip
    env.pop("WORKBENCH_MODELS", None)
    out = subprocess.run([sys.executable, "-m", "workbench", "models", "--json"],
                         capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["named-vlm"]["mmproj"] == str(proj), "relative to the config file"
    assert rows["found-vlm"]["mmproj"] == str(vision_dir / "vlm" / "mmproj-SmolVLM-F16.gguf")
    assert rows["smollm2-135m-instruct"]["mmproj"] is None
    table = subprocess.run([sys.executable, "-m", "workbench", "models"],
                           capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    line = next(x for x in table.stdout.splitlines() if x.startswith("named-vlm"))
    assert line.endswith(" + projector.gguf")
