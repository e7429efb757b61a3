"""The admin's leaderboard: the votes filtered and turned into ratings, tables and a figure.

Pure data, no Gradio: :func:`leaderboard_view` computes the frames, :func:`board_panel`
the texts and tables the admin panel shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from workbench import ratings

__all__ = [
    "ALL",
    "BOARD_COLUMNS",
    "BoardPanel",
    "LeaderboardView",
    "board_panel",
    "leaderboard_view",
]

ALL = "all"
"""The filter value that keeps every category or language."""
BOARD_COLUMNS = [
    "rank",
    "model",
    "rating",
    "ci_low",
    "ci_high",
    "battles",
    "wins",
    "losses",
    "ties",
]


@dataclass(frozen=True)
class LeaderboardView:
    """What the admin panel shows, computed from the votes."""

    board: pl.DataFrame
    """Bradley-Terry ratings with 95% bootstrap intervals (ratings.leaderboard)."""
    elo: pl.DataFrame
    """Online Elo in vote order (ratings.online_elo)."""
    matrix: pl.DataFrame
    """Empirical win rates (ratings.win_matrix)."""
    votes: int
    """Votes counted (after filters)."""
    flagged: int
    """Votes on flagged battles (excluded unless asked for)."""
    categories: list[str]
    """Categories present in the votes (for the filter)."""
    languages: list[str]
    """Languages present in the votes (for the filter)."""


def leaderboard_view(
    votes: pl.DataFrame,
    *,
    category: str | None = None,
    language: str | None = None,
    include_flagged: bool = False,
    bootstrap: int = 200,
    seed: int = 0,
    labels: Mapping[str, str] | None = None,
) -> LeaderboardView:
    """Filter the votes and compute the admin panel's frames with ``workbench.ratings``.

    Args:
        votes: every vote (``VoteStore.votes_frame(include_flagged=True)``).
        category: keep only this prompt category (None or "all": every one).
        language: keep only this prompt language (None or "all": every one).
        include_flagged: count battles the identity guard flagged.
        bootstrap: bootstrap rounds for the intervals.
        seed: bootstrap seed.
        labels: model name -> the name to show (``Arena.label``: "(base model)" added).
    """
    if labels and votes.height:
        votes = votes.with_columns(
            pl.col("model_a").replace(dict(labels)), pl.col("model_b").replace(dict(labels))
        )
    categories = sorted(c for c in votes["category"].unique().to_list() if c)
    languages = sorted(c for c in votes["language"].unique().to_list() if c)
    flagged = int(votes["flagged"].sum()) if votes.height else 0
    v = votes
    if not include_flagged and v.height:
        v = v.filter(~pl.col("flagged"))
    if category and category != ALL:
        v = v.filter(pl.col("category") == category)
    if language and language != ALL:
        v = v.filter(pl.col("language") == language)
    if v.height == 0:
        empty = pl.DataFrame(schema={c: pl.String() for c in BOARD_COLUMNS})
        return LeaderboardView(
            empty,
            pl.DataFrame(schema={"model": pl.String(), "rating": pl.Float64()}),
            pl.DataFrame(schema={"model": pl.String()}),
            0,
            flagged,
            categories,
            languages,
        )
    board = ratings.leaderboard(v, method="bt", bootstrap=bootstrap, seed=seed)
    elo = ratings.online_elo(v).select("model", "rating").sort("rating", descending=True)
    matrix = ratings.win_matrix(v, order=board["model"].to_list())
    return LeaderboardView(board, elo, matrix, v.height, flagged, categories, languages)


@dataclass(frozen=True)
class BoardPanel:
    """The admin panel's contents, ready for display."""

    counts: str
    """One Markdown line: votes counted, battles served, flagged votes."""
    board: Any
    """The Bradley-Terry table (pandas, rounded)."""
    elo: Any
    """The online Elo table (pandas, rounded)."""
    figure: Any
    """The win-rate heat map (Plotly), None without votes."""


def board_panel(view: LeaderboardView, *, battles: int, include_flagged: bool) -> BoardPanel:
    """Tables, figure and the counts line for ``view`` (``battles``: battles served)."""
    # plots imports Plotly at its top: loaded only once an admin looks at the board.
    from workbench.plots.ratings import win_rate_heatmap

    board = view.board.select([c for c in BOARD_COLUMNS if c in view.board.columns])
    board = board.with_columns(pl.col(pl.Float64).round(1))
    fig = win_rate_heatmap(view.matrix, title="Win rate (row beats column)") if view.votes else None
    counts = (
        f"**{view.votes}** votes counted · {battles} battles served · "
        f"{view.flagged} votes on flagged battles" + ("" if include_flagged else " (excluded)")
    )
    return BoardPanel(
        counts,
        board.to_pandas(),
        view.elo.with_columns(pl.col("rating").round(1)).to_pandas(),
        fig,
    )
