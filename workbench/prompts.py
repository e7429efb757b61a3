"""Prompt sets: JSON lines files with ``id``, ``category``, ``language``, ``prompt``.

A bare name (``coding``) is looked up in the data directory's ``prompts/`` (your own
sets, which win), then among the sets that ship inside the package
(``workbench/data/prompts/``, see its README).
"""

from __future__ import annotations

import json
from pathlib import Path

from workbench.backends.base import Prompt
from workbench.errors import InputError
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
            )
        )
    if not prompts:
        raise PromptSetError(f"{p.name}: no prompts")
    return prompts
