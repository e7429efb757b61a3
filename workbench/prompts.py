"""Prompt sets: JSON lines files with ``id``, ``category``, ``language``, ``prompt``, and
optionally ``images``: a list of image files (PNG, JPEG, WebP; or ``image``, one file),
relative to the set's own file, read and checked when the set is loaded.

A bare name (``coding``) is looked up in the data directory's ``prompts/`` (your own
sets, which win), then among the sets that ship inside the package
(``workbench/data/prompts/``, see its README).
"""

from __future__ import annotations

import json
from pathlib import Path

from workbench.backends.base import Prompt
from workbench.errors import InputError
from workbench.images import Image, ImageError, load_images
from workbench.paths import data_dir, package_data

REQUIRED = ("id", "category", "language", "prompt")


class PromptSetError(InputError):
    """A prompt file is malformed; the message names the file, line and field."""


def prompt_dirs() -> list[Path]:
    """Where prompt sets are looked up by name, in order: the data directory's
    ``prompts/``, then the sets bundled with the package."""
    dirs = [data_dir() / "prompts", package_data("prompts")]
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


def load_prompts(path: str | Path) -> list[Prompt]:
    """Read a prompt set: a ``.jsonl`` path, or the name of a bundled or own set.

    Raises:
        PromptSetError: missing file, bad JSON, missing or duplicate fields.
    """
    p = Path(path)
    if not p.exists() and not p.suffix:
        for d in prompt_dirs():
            if (d / f"{p.name}.jsonl").exists():
                p = d / f"{p.name}.jsonl"
                break
    if not p.exists():
        raise PromptSetError(f"prompt file not found: {path}")
    prompts: list[Prompt] = []
    seen: set[str] = set()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PromptSetError(f"cannot read prompt file {path}: {e}") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise PromptSetError(f"{p.name} line {lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise PromptSetError(f"{p.name} line {lineno}: expected an object")
        for key in REQUIRED:
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise PromptSetError(f"{p.name} line {lineno}: field {key!r} missing or empty")
        if obj["id"] in seen:
            raise PromptSetError(f"{p.name} line {lineno}: duplicate id {obj['id']!r}")
        seen.add(obj["id"])
        prompts.append(
            Prompt(
                text=obj["prompt"],
                id=obj["id"],
                category=obj["category"],
                language=obj["language"],
                prompt_set=p.stem,
                images=_images(obj, p, lineno),
            )
        )
    if not prompts:
        raise PromptSetError(f"{p.name}: no prompts")
    return prompts


def _images(obj: dict[str, object], path: Path, lineno: int) -> tuple[Image, ...]:
    """A prompt's ``images`` (or ``image``), read from beside the set's file."""
    if "image" in obj and "images" in obj:
        raise PromptSetError(f"{path.name} line {lineno}: give `image` or `images`, not both")
    names = obj.get("images", [obj["image"]] if "image" in obj else [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise PromptSetError(
            f"{path.name} line {lineno}: `images` must be a list of image file paths"
        )
    try:
        return load_images(names, base=path.parent)
    except ImageError as e:
        raise PromptSetError(f"{path.name} line {lineno}: {e}") from None
