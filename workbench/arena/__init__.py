"""The blind-voting arena: a Gradio panel where raters vote on anonymous answer pairs.

- :func:`load_study` reads a STUDY.toml (models, prompts, raters, settings, votes file);
- :func:`build_app` returns the Gradio Blocks (``.launch()`` it, or embed it in a notebook);
- :class:`Arena` is the engine underneath (battles, votes), usable alone;
- :func:`identity_terms` is the identity guard (does a text name a model or maker?);
- :class:`VoteStore` is the SQLite votes file; ``export`` writes the ``ratings`` format;
- :func:`leaderboard_view` turns votes into the admin's leaderboard frames.

Modules: ``study`` (the file), ``guard`` (identity guard), ``battles`` (pairs, pool,
engine), ``votes`` (storage), ``auth`` (sessions, lockout), ``leaderboard``, ``handlers``
(what each request does) and ``app`` (the page's layout). Gradio is imported only by
:func:`build_app`.
"""

from __future__ import annotations

from workbench.arena.app import build_app
from workbench.arena.battles import Arena, ArenaError, BattleView, choose_pair
from workbench.arena.guard import identity_terms
from workbench.arena.leaderboard import LeaderboardView, leaderboard_view
from workbench.arena.study import Rater, Study, StudyError, load_study, parse_study
from workbench.arena.votes import VoteOutcome, VoteRejected, VoteStore

__all__ = [
    "Arena",
    "ArenaError",
    "BattleView",
    "LeaderboardView",
    "Rater",
    "Study",
    "StudyError",
    "VoteOutcome",
    "VoteRejected",
    "VoteStore",
    "build_app",
    "choose_pair",
    "identity_terms",
    "leaderboard_view",
    "load_study",
    "parse_study",
]
