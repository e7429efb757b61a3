"""Figures for ratings: leaderboard with interval bars, win-rate heatmap, rating over time.

Each function takes a frame made by :mod:`workbench.ratings` and returns a Plotly figure;
nothing is computed here beyond reshaping for display.
"""

from __future__ import annotations

import polars as pl
from plotly import graph_objects as go

from workbench.plots.theme import template


def ratings_figure(board: pl.DataFrame, *, title: str | None = None) -> go.Figure:
    """Ratings with 95% interval bars, best model on the left.

    Args:
        board: A :func:`workbench.ratings.leaderboard` frame (model, rating, ci_low,
            ci_high, rank; rating_sc, ci_low_sc, ci_high_sc when style-controlled).
        title: Figure title.
    """
    board = board.sort("rating", descending=True)
    fig = go.Figure()
    series = [("rating", "ci_low", "ci_high", "rating")]
    if "rating_sc" in board.columns:
        series.append(("rating_sc", "ci_low_sc", "ci_high_sc", "style-controlled"))
    for rating, low, high, name in series:
        r = board[rating]
        has_ci = board[low].null_count() < board.height
        error = (
            {
                "type": "data",
                "symmetric": False,
                "array": (board[high] - r).to_list(),
                "arrayminus": (r - board[low]).to_list(),
            }
            if has_ci
            else None
        )
        fig.add_trace(
            go.Scatter(
                x=board["model"].to_list(),
                y=r.to_list(),
                mode="markers",
                name=name,
                error_y=error,
                customdata=board.select("rank", "battles").rows(),
                hovertemplate=(
                    "%{x}<br>rating %{y:.1f}<br>rank %{customdata[0]}"
                    "<br>%{customdata[1]} battles<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        template=template(),
        title=title or "Ratings (95% intervals)",
        xaxis_title="model",
        yaxis_title="rating (Elo scale)",
        showlegend=len(series) > 1,
    )
    return fig


def win_rate_heatmap(matrix: pl.DataFrame, *, title: str | None = None) -> go.Figure:
    """Heatmap of a win-rate matrix: P(row model beats column model).

    Args:
        matrix: :func:`workbench.ratings.win_matrix` or
            :func:`workbench.ratings.predicted_win_matrix` (column model, then one column
            per opponent).
        title: Figure title.
    """
    models = matrix["model"].to_list()
    z = [[matrix[m][i] for m in models] for i in range(matrix.height)]
    text = [["" if v is None else f"{v:.2f}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=models,
            y=models,
            text=text,
            texttemplate="%{text}",
            zmin=0.0,
            zmax=1.0,
            colorscale="RdBu",
            hovertemplate="%{y} beats %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        template=template(),
        title=title or "Win rate (row beats column, ties excluded)",
        xaxis_title="opponent",
        yaxis_title="model",
        yaxis_autorange="reversed",
    )
    return fig


def rating_history_figure(history: pl.DataFrame, *, title: str | None = None) -> go.Figure:
    """One line per model: rating as votes came in.

    Args:
        history: :func:`workbench.ratings.rating_history` (votes, time, model, rating).
            The x axis is ``time`` when it is filled, else the number of votes.
        title: Figure title.
    """
    use_time = history["time"].null_count() < history.height
    x_col = "time" if use_time else "votes"
    fig = go.Figure()
    for (model,), part in history.sort(x_col).group_by(["model"], maintain_order=True):
        fig.add_trace(
            go.Scatter(
                x=part[x_col].to_list(),
                y=part["rating"].to_list(),
                mode="lines+markers",
                name=str(model),
            )
        )
    fig.update_layout(
        template=template(),
        title=title or "Rating over time",
        xaxis_title="time" if use_time else "votes",
        yaxis_title="rating (Elo scale)",
    )
    return fig
