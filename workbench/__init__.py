"""workbench: compare local LLMs side by side, with honest speed and memory figures
and blind preference ratings, on your own hardware.

The public API is imported lazily so that ``import workbench`` (and the CLI) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "GenerationConfig": "workbench.backends.base",
    "Prompt": "workbench.backends.base",
    "Completion": "workbench.backends.base",
    "Runner": "workbench.runner",
    "compare": "workbench.runner",
    "load_prompts": "workbench.runner",
    "RunStore": "workbench.store",
    "load_runs": "workbench.store",
    "list_models": "workbench.models.registry",
    "resolve": "workbench.models.registry",
    "read_model_info": "workbench.gguf",
    "bench": "workbench.speed",
    "load_bench": "workbench.speed",
    "plan": "workbench.models.memory",
    "max_context": "workbench.models.memory",
    "leaderboard": "workbench.ratings",
    "read_votes": "workbench.ratings",
    "win_matrix": "workbench.ratings",
    "ComparePanel": "workbench.widgets",
    "HistoryView": "workbench.widgets",
    "build_app": "workbench.arena",
    "load_study": "workbench.arena",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
