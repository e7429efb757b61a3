"""Prompt sets: JSON lines files with ``id``, ``category``, ``language``, ``prompt``."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.backends.base import Prompt

REQUIRED = ("id", "category", "language", "prompt")


class PromptSetError(ValueError):
    """A prompt file is malformed; the message names the file, line and field."""


def prompts_dir() -> Path:
    """The bundled prompt sets (data/prompts of the checkout)."""
    from workbench.store import data_dir

    return data_dir() / "prompts"


def load_prompts(path: str | Path) -> list[Prompt]:
    """Read a prompt set. A bare name (``coding``) is looked up in the bundled sets.

    Raises:
        PromptSetError: missing file, bad JSON, missing or duplicate fields.
    """
    p = Path(path)
    if not p.exists() and not p.suffix:
        p = prompts_dir() / f"{p.name}.jsonl"
    if not p.exists():
        raise PromptSetError(f"prompt file not found: {path}")
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
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


def list_prompt_sets() -> list[str]:
    """Names of the bundled prompt sets."""
    d = prompts_dir()
    return sorted(f.stem for f in d.glob("*.jsonl")) if d.exists() else []
