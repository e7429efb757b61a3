"""The blind-voting arena: a Gradio panel where raters vote on anonymous answer pairs.

- :func:`load_study` reads a STUDY.toml (models, prompts, raters, settings, votes file);
- :func:`build_app` returns the Gradio Blocks (``.launch()`` it, or embed it in a notebook);
- :class:`Arena` is the engine underneath (battles, identity guard, votes), usable alone;
- :class:`VoteStore` is the SQLite votes file; ``export`` writes the ``ratings`` format.

Gradio is imported only by :func:`build_app`.
"""

from __future__ import annotations

from typing import Any

from workbench.arena.battles import Arena, ArenaError, BattleView, choose_pair, identity_terms
from workbench.arena.study import Rater, Study, StudyError, load_study, parse_study
from workbench.arena.votes import VoteOutcome, VoteRejected, VoteStore

__all__ = [
    "Arena",
    "ArenaError",
    "BattleView",
    "Rater",
    "Study",
    "StudyError",
    "VoteOutcome",
    "VoteRejected",
    "VoteStore",
    "build_app",
    "choose_pair",
    "identity_terms",
    "load_study",
    "parse_study",
]


def build_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`workbench.arena.app.build_app` (imports Gradio on first use)."""
    from workbench.arena.app import build_app as _build_app

    return _build_app(*args, **kwargs)
