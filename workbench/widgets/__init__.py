"""Jupyter panels (ipywidgets): compare models side by side, browse stored runs.

Imported lazily so that ``import workbench.widgets`` works without ipywidgets installed;
using a panel without it raises an ImportError naming the extra to install
(``pip install 'workbench[notebook]'``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ComparePanel": "workbench.widgets.compare",
    "HistoryView": "workbench.widgets.history",
    "InlineApp": "workbench.widgets.embed",
    "launch_inline": "workbench.widgets.embed",
    "filter_runs": "workbench.widgets.history",
    "runs_table_html": "workbench.widgets.history",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench.widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
