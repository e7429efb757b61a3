"""Vision projectors (``mmproj-*.gguf``): which file is one, and which one goes with a model.

A vision model in GGUF is two files: the language model and its projector (llama.cpp's
``--mmproj``; ``general.architecture`` ``clip``), which encodes images into the language
model's embedding space. Hub repositories, LM Studio and plain directories keep the
projector beside the model; Ollama keeps it as a manifest layer of its own
(:data:`OLLAMA_PROJECTOR_MEDIA`). A projector is never a model of its own: listings
leave it out and attach it to the models beside it.

When several projectors sit beside a model (a repository with ``mmproj-F16.gguf``,
``mmproj-BF16.gguf`` and ``mmproj-F32.gguf``), one that names the model's own stem wins,
then the precision order of :data:`PROJECTOR_PRECISIONS` (F16 first: what llama.cpp's
conversion writes by default and every backend runs), then the name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from workbench.errors import InputError
from workbench.gguf import ModelInfo

OLLAMA_PROJECTOR_MEDIA = "application/vnd.ollama.image.projector"
"""The media type of an Ollama manifest's projector layer."""

PROJECTOR_PRECISIONS: tuple[str, ...] = ("F16", "BF16", "Q8_0", "F32")
"""Projector precisions in order of preference, as hub repositories name them."""

_QUANT_TAIL = re.compile(r"[-_.](?:I?Q\d\w*|F16|BF16|F32|FP16|FP32)$", re.IGNORECASE)


def is_projector(name: str | Path) -> bool:
    """True for a projector's file name (``mmproj`` in it, as every store names them)."""
    n = PurePosixPath(str(name)).name.lower()
    return n.endswith(".gguf") and "mmproj" in n


def _model_stem(model: str) -> str:
    """``gemma-4-E4B-it-Q4_K_M.gguf`` -> ``gemma-4-e4b-it`` (the quantization dropped)."""
    stem = PurePosixPath(model).name.lower().removesuffix(".gguf")
    return _QUANT_TAIL.sub("", stem)


def _rank(projector: str, model: str) -> tuple[int, int, str]:
    name = PurePosixPath(projector).name
    upper = name.upper().removesuffix(".GGUF")
    stem = _model_stem(model)
    names_model = 0 if stem and stem in name.lower() else 1
    precision = next(
        (i for i, p in enumerate(PROJECTOR_PRECISIONS) if re.search(rf"(?:^|[-_.]){p}$", upper)),
        len(PROJECTOR_PRECISIONS),
    )
    return names_model, precision, name


def pick_projector(candidates: Iterable[str], model: str) -> str | None:
    """The projector of ``candidates`` (paths or names; non-projectors are ignored) that
    goes with ``model`` (its file name), None when there is none."""
    found = [c for c in candidates if is_projector(c)]
    if not found:
        return None
    return min(found, key=lambda c: _rank(c, model))


def projector_beside(model: str | Path) -> Path | None:
    """The projector in the model file's own directory, if one is there."""
    p = Path(model)
    try:
        siblings = [str(q) for q in p.parent.iterdir() if q != p and q.is_file()]
    except OSError:
        return None
    found = pick_projector(siblings, p.name)
    return Path(found) if found else None


IMAGE_TOKEN_BUDGETS: dict[str, tuple[int, int, int]] = {
    "gemma4v": (70, 1120, 280),
}
"""Projector types with an image token budget: (fewest, most, default) tokens per image
(Gemma 4: 70 to 1120, 280 by default, as its model card gives them)."""

FIXED_IMAGE_TOKENS: dict[str, int] = {"gemma3": 256}
"""Projector types whose every image takes the same number of tokens, whatever its size."""


def projector_type(info: ModelInfo) -> str | None:
    """A projector header's type (``clip.projector_type``, or the vision one of a
    projector with several modalities), None when it says none."""
    md = info.metadata
    value = md.get("clip.projector_type") or md.get("clip.vision.projector_type")
    return str(value) if value else None


def check_budget(info: ModelInfo, budget: int | None) -> None:
    """Refuse an ``image_tokens`` setting outside the projector's budget.

    Raises:
        InputError: ``budget`` below the fewest or above the most tokens it allows.
    """
    kind = projector_type(info)
    if budget is None or kind not in IMAGE_TOKEN_BUDGETS:
        return
    low, high, _ = IMAGE_TOKEN_BUDGETS[kind]
    if not low <= budget <= high:
        raise InputError(f"image_tokens {budget} is outside {kind}'s budget ({low} to {high})")


def image_tokens(info: ModelInfo, budget: int | None = None) -> int | None:
    """Tokens one image takes in the language model's context with this projector (the
    ``budget`` where it has one), None when the count depends on the image (tiling,
    dynamic resolution) or the type is unknown here."""
    kind = projector_type(info)
    if kind in IMAGE_TOKEN_BUDGETS:
        return budget or IMAGE_TOKEN_BUDGETS[kind][2]
    if kind in FIXED_IMAGE_TOKENS:
        return FIXED_IMAGE_TOKENS[kind]
    if kind == "mlp" and not info.metadata.get("clip.vision.image_grid_pinpoints"):
        size = info.metadata.get("clip.vision.image_size")
        patch = info.metadata.get("clip.vision.patch_size")
        if isinstance(size, int) and isinstance(patch, int) and patch:
            return (size // patch) ** 2  # LLaVA 1.5: one token per patch
    return None
