"""Ratings from pairwise votes: online Elo, Bradley-Terry, confidence intervals, win rates.

Pure functions over a Polars votes frame with columns ``model_a``, ``model_b`` and
``winner`` (one of ``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``, the public arena
convention; :mod:`workbench.schemas`); extra columns (``category``, ``language``,
``len_a``, ``len_b``, ``tstamp``, ...) are carried along and used where asked. Ratings are
on an :class:`EloScale` (by default P(A beats B) = 1 / (1 + 10 ** ((R_B - R_A) / 400)),
mean 1000). Nothing here prints.

The modules, bottom up: :mod:`~workbench.ratings.votes` (reading and checking votes),
:mod:`~workbench.ratings.cells` (integer codes and cell counts),
:mod:`~workbench.ratings.bt` (Bradley-Terry: method and prior),
:mod:`~workbench.ratings.elo` (online Elo), :mod:`~workbench.ratings.boards` (leaderboards),
:mod:`~workbench.ratings.winrates` and :mod:`~workbench.ratings.history`.

Example:
    >>> from workbench import ratings
    >>> votes = ratings.read_votes("votes.parquet")
    >>> board = ratings.leaderboard(votes, bootstrap=1000, seed=0)
    >>> ratings.fit_bt(votes, elo=ratings.EloScale(scale=400, base=10, initial=1500))
"""

from __future__ import annotations

from workbench.ratings.boards import (
    CiMethod,
    Method,
    leaderboard,
    leaderboard_by,
    ranks_from_intervals,
)
from workbench.ratings.bt import DEFAULT_REG, BTFit, bootstrap_bt, fit_bt, fit_bt_style
from workbench.ratings.cells import Ties
from workbench.ratings.elo import DEFAULT_K, online_elo
from workbench.ratings.errors import RatingsError, VotesFileError, VotesFileNotFound
from workbench.ratings.history import rating_history
from workbench.ratings.scale import ELO_SCALE, Anchor, EloScale
from workbench.ratings.votes import read_votes, validate_votes
from workbench.ratings.winrates import predicted_win_matrix, win_matrix

__all__ = [
    "DEFAULT_K",
    "DEFAULT_REG",
    "ELO_SCALE",
    "Anchor",
    "BTFit",
    "CiMethod",
    "EloScale",
    "Method",
    "RatingsError",
    "Ties",
    "VotesFileError",
    "VotesFileNotFound",
    "bootstrap_bt",
    "fit_bt",
    "fit_bt_style",
    "leaderboard",
    "leaderboard_by",
    "online_elo",
    "predicted_win_matrix",
    "ranks_from_intervals",
    "rating_history",
    "read_votes",
    "validate_votes",
    "win_matrix",
]
