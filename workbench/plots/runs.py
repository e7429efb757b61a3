"""Figures of stored responses (the runs frame): speed, latency and length per model.

Every figure shows distributions (a box with every response drawn as a point), not only
means: on a laptop one slow response in five is exactly what a user wants to see. Each
function takes a runs frame (``workbench.schemas.RUN_SCHEMA``) and returns a Plotly figure;
rows whose metric is missing (failed responses) are left out of that figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from workbench.plots.theme import template

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "LATENCY_METRICS",
    "METRIC_LABELS",
    "language_figure",
    "length_figure",
    "model_colors",
    "run_figures",
    "speed_figure",
    "ttft_figure",
]

METRIC_LABELS: dict[str, str] = {
    "ttft_s": "time to first token (s)",
    "ttfa_s": "time to first answer token (s)",
    "gen_tps": "generation tokens/s",
    "gen_tps_wall": "generation tokens/s (wall clock)",
    "prompt_tps": "prompt tokens/s",
    "completion_tokens": "response length (tokens)",
    "total_s": "total time (s)",
}
"""Axis labels of the metrics the figures know."""

_PALETTE = (
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#B279A2",
    "#EECA3B",
    "#9D755D",
    "#FF9DA6",
    "#BAB0AC",
)
_HEIGHT = 320


def _go() -> Any:
    """plotly.graph_objects, imported on first use (it takes a while to import)."""
    import plotly.graph_objects as go

    return go


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """A stable colour per model name (sorted order), so every figure agrees."""
    return {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(sorted(set(models)))}


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _empty(title: str, message: str) -> go.Figure:
    fig = _go().Figure()
    fig.update_layout(
        title=title,
        height=_HEIGHT,
        template=template(),
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "font": {"size": 14, "color": "#888"},
            }
        ],
    )
    return fig


def _present(runs: pl.DataFrame, metric: str) -> pl.DataFrame:
    if metric not in runs.columns:
        raise ValueError(f"runs frame has no column {metric!r}")
    return runs.filter(pl.col(metric).is_not_null() & pl.col("model").is_not_null())


def _hover(frame: pl.DataFrame) -> list[str]:
    ids = frame["prompt_id"] if "prompt_id" in frame.columns else [None] * frame.height
    reasons = frame["finish_reason"] if "finish_reason" in frame.columns else [None] * frame.height
    return [f"prompt {p or '-'} · {r or '-'}" for p, r in zip(ids, reasons, strict=True)]


def _per_model(runs: pl.DataFrame, metric: str, title: str) -> go.Figure:
    """One box (with all points) per model along x."""
    go = _go()
    frame = _present(runs, metric)
    if frame.height == 0:
        return _empty(title, "no responses yet")
    colors = model_colors(frame["model"].to_list())
    fig = go.Figure()
    for model in sorted(colors):
        sub = frame.filter(pl.col("model") == model)
        fig.add_trace(
            go.Box(
                y=sub[metric].to_list(),
                name=model,
                marker_color=colors[model],
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                text=_hover(sub),
                hovertemplate="%{y:.3g}<br>%{text}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        title=title,
        height=_HEIGHT,
        template=template(),
        showlegend=False,
        yaxis_title=_label(metric),
        margin={"l": 60, "r": 20, "t": 50, "b": 60},
    )
    return fig


LATENCY_METRICS: dict[str, str] = {"ttft_s": "first token", "ttfa_s": "first answer"}
"""The two waits the latency figure puts side by side: submit to the first token of any
kind, and submit to the first token of the answer (after the thinking)."""


def ttft_figure(runs: pl.DataFrame) -> go.Figure:
    """Time to first token next to time to first answer token, one box per model in
    each (every response a point). A model that thinks shows the wait its thinking adds;
    without thinking the two are the same. Frames without ``ttfa_s`` (or where no row
    has it) show the first token only."""
    go = _go()
    title = "Time to first token and to first answer"
    metrics = [m for m in LATENCY_METRICS if m in runs.columns]
    if "ttft_s" not in metrics:
        raise ValueError("runs frame has no column 'ttft_s'")
    present = {m: _present(runs, m) for m in metrics}
    present = {m: f for m, f in present.items() if f.height}
    if not present:
        return _empty(title, "no responses yet")
    colors = model_colors([m for f in present.values() for m in f["model"].to_list()])
    fig = go.Figure()
    for model in sorted(colors):
        xs: list[str] = []
        ys: list[float] = []
        hover: list[str] = []
        for metric, frame in present.items():
            sub = frame.filter(pl.col("model") == model)
            xs += [LATENCY_METRICS[metric]] * sub.height
            ys += sub[metric].to_list()
            hover += _hover(sub)
        fig.add_trace(
            go.Box(
                x=xs,
                y=ys,
                name=model,
                marker_color=colors[model],
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
                text=hover,
                hovertemplate="%{x}: %{y:.3g} s<br>%{text}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        title=title,
        height=_HEIGHT,
        template=template(),
        boxmode="group",
        yaxis_title="seconds from submit",
        legend={"orientation": "h", "y": -0.25},
        margin={"l": 60, "r": 20, "t": 50, "b": 80},
    )
    fig.update_xaxes(categoryorder="array", categoryarray=[LATENCY_METRICS[m] for m in present])
    return fig


def speed_figure(runs: pl.DataFrame, metric: str = "gen_tps") -> go.Figure:
    """Generation speed per model; ``metric`` is ``gen_tps`` (llama.cpp's counters) or
    ``gen_tps_wall`` (what the user saw)."""
    return _per_model(runs, metric, "Generation speed")


def length_figure(runs: pl.DataFrame) -> go.Figure:
    """Response length in tokens per model."""
    return _per_model(runs, "completion_tokens", "Response length")


def language_figure(runs: pl.DataFrame, metric: str = "gen_tps") -> go.Figure:
    """``metric`` per prompt language, one box per model within each language."""
    go = _go()
    title = f"{_label(metric).capitalize()} by language"
    frame = _present(runs, metric).with_columns(
        pl.col("language").fill_null("unknown").alias("language")
    )
    if frame.height == 0:
        return _empty(title, "no responses yet")
    colors = model_colors(frame["model"].to_list())
    fig = go.Figure()
    for model in sorted(colors):
        sub = frame.filter(pl.col("model") == model)
        fig.add_trace(
            go.Box(
                x=sub["language"].to_list(),
                y=sub[metric].to_list(),
                name=model,
                marker_color=colors[model],
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
                text=_hover(sub),
                hovertemplate="%{x}: %{y:.3g}<br>%{text}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        title=title,
        height=_HEIGHT,
        template=template(),
        boxmode="group",
        xaxis_title="language",
        yaxis_title=_label(metric),
        legend={"orientation": "h", "y": -0.25},
        margin={"l": 60, "r": 20, "t": 50, "b": 80},
    )
    fig.update_xaxes(categoryorder="category ascending")
    return fig


def run_figures(runs: pl.DataFrame, *, languages: bool = True) -> dict[str, go.Figure]:
    """The standard set: ``ttft``, ``speed``, ``length`` and (optionally) ``language``."""
    figs = {
        "ttft": ttft_figure(runs),
        "speed": speed_figure(runs),
        "length": length_figure(runs),
    }
    if languages:
        figs["language"] = language_figure(runs)
    return figs
