"""Models already downloaded by Ollama and LM Studio, named as those tools name them.

Ollama keeps content-addressed blobs and small JSON manifests::

    $OLLAMA_MODELS (default ~/.ollama/models; /usr/share/ollama/.ollama/models for the
    Linux service)
      manifests/registry.ollama.ai/library/qwen3/8b          <- a manifest per name:tag
      manifests/hf.co/unsloth/Qwen3.5-9B-GGUF/Q4_K_M
      blobs/sha256-<hex>                                     <- the GGUF weights, etc.

A manifest's layer with media type ``application/vnd.ollama.image.model`` is the GGUF
file; a vision model's ``application/vnd.ollama.image.projector`` layer its projector.
``ollama list`` names models ``qwen3:8b`` (the default registry and the ``library``
namespace left out), ``user/model:tag`` and ``hf.co/owner/repo:tag``; the registry uses
the same names.

LM Studio keeps plain files under its models directory (``~/.lmstudio/models``, earlier
``~/.cache/lm-studio/models``), two levels deep: ``publisher/repository/file.gguf``; that
relative path is the name LM Studio shows. Projector files (mmproj) and later parts of
split files are not models of their own and are left out; a projector beside a model is
its ``mmproj``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from workbench.gguf import is_later_split_part
from workbench.models.projectors import OLLAMA_PROJECTOR_MEDIA, is_projector, projector_beside
from workbench.models.ref import ModelRef

OLLAMA_MODEL_MEDIA = "application/vnd.ollama.image.model"
OLLAMA_DEFAULT_REGISTRY = "registry.ollama.ai"


def ollama_dirs() -> list[Path]:
    """Ollama model directories: $OLLAMA_MODELS, else the user's and the service's."""
    env = os.environ.get("OLLAMA_MODELS")
    if env:
        return [Path(env).expanduser()]
    return [Path.home() / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]


def _ollama_name(rel: Path) -> str:
    """manifests/<host>/<namespace>/<model>/<tag> -> the name ``ollama list`` shows."""
    parts = rel.parts
    host, tag, repo = parts[0], parts[-1], list(parts[1:-1])
    if host == OLLAMA_DEFAULT_REGISTRY:
        if repo and repo[0] == "library":
            repo = repo[1:]
        return f"{'/'.join(repo)}:{tag}"
    return f"{host}/{'/'.join(repo)}:{tag}"


def _blob_path(blobs: Path, digest: str) -> Path | None:
    for name in (digest.replace(":", "-"), digest):  # sha256-<hex>; older: sha256:<hex>
        p = blobs / name
        if p.is_file():
            return p
    return None


def ollama_models(dirs: Iterable[str | Path] | None = None) -> list[ModelRef]:
    """Models in Ollama's store, one per manifest whose model layer's blob is present."""
    refs: list[ModelRef] = []
    for root in [Path(d) for d in dirs] if dirs is not None else ollama_dirs():
        manifests = root / "manifests"
        if not manifests.is_dir():
            continue
        for mf in sorted(p for p in manifests.rglob("*") if p.is_file()):
            rel = mf.relative_to(manifests)
            if len(rel.parts) < 3:
                continue
            try:
                doc = json.loads(mf.read_text())
            except (OSError, ValueError):
                continue
            layers = doc.get("layers") if isinstance(doc, dict) else None
            model = next(
                (
                    layer
                    for layer in layers or []
                    if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_MEDIA
                ),
                None,
            )
            if model is None or not isinstance(model.get("digest"), str):
                continue
            blob = _blob_path(root / "blobs", model["digest"])
            if blob is None:
                continue
            projector = next(
                (
                    layer
                    for layer in layers or []
                    if isinstance(layer, dict)
                    and layer.get("mediaType") == OLLAMA_PROJECTOR_MEDIA
                    and isinstance(layer.get("digest"), str)
                ),
                None,
            )
            mmproj = _blob_path(root / "blobs", projector["digest"]) if projector else None
            refs.append(
                ModelRef(_ollama_name(rel), str(blob), "ollama",
                         mmproj=str(mmproj) if mmproj else None)
            )  # fmt: skip
    return refs


def lmstudio_dirs() -> list[Path]:
    """LM Studio model directories: $LMSTUDIO_MODELS_DIR, the downloadsFolder in LM
    Studio's settings, ~/.lmstudio/models and the older ~/.cache/lm-studio/models."""
    env = os.environ.get("LMSTUDIO_MODELS_DIR")
    if env:
        return [Path(env).expanduser()]
    home = Path.home()
    out: list[Path] = []
    lms_home = home / ".lmstudio"
    pointer = home / ".lmstudio-home-pointer"  # LM Studio writes its home's path here
    with contextlib.suppress(OSError):
        lms_home = Path(pointer.read_text().strip()) if pointer.is_file() else lms_home
    try:
        settings = json.loads((lms_home / "settings.json").read_text())
        folder = settings.get("downloadsFolder") if isinstance(settings, dict) else None
        if isinstance(folder, str) and folder:
            out.append(Path(folder).expanduser())
    except (OSError, ValueError):
        pass
    out += [lms_home / "models", home / ".cache" / "lm-studio" / "models"]
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def lmstudio_models(dirs: Iterable[str | Path] | None = None) -> list[ModelRef]:
    """GGUF models under LM Studio's models directory, named ``publisher/repo/file.gguf``."""
    refs: list[ModelRef] = []
    for root in [Path(d) for d in dirs] if dirs is not None else lmstudio_dirs():
        if not root.is_dir():
            continue
        for p in sorted(root.glob("*/*/**/*.gguf")):
            if is_projector(p) or is_later_split_part(p):
                continue
            mmproj = projector_beside(p)
            refs.append(
                ModelRef(p.relative_to(root).as_posix(), str(p), "lmstudio",
                         mmproj=str(mmproj) if mmproj else None)
            )  # fmt: skip
    return refs
