"""Figures of bench frames (:data:`workbench.schemas.BENCH_SCHEMA`); they only draw."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from workbench.plots.theme import template
from workbench.stats import median_interval

if TYPE_CHECKING:
    import plotly.graph_objects as go

_SETTINGS = ("n_threads", "n_batch", "n_ubatch", "flash_attn", "type_k", "type_v", "n_gpu_layers")
_TESTS = {"pp": "prompt processing", "tg": "generation"}


def _fa(v: Any) -> str:
    return "auto" if v is None else str(int(v))


def _varying(frame: pl.DataFrame) -> list[str]:
    """Settings columns that take more than one value in the frame."""
    return [c for c in _SETTINGS if frame.select(pl.col(c).n_unique()).item() > 1]


def _label(row: dict[str, Any], varying: list[str]) -> str:
    short = {
        "n_threads": "t",
        "n_batch": "b",
        "n_ubatch": "ub",
        "flash_attn": "fa",
        "type_k": "ctk",
        "type_v": "ctv",
        "n_gpu_layers": "ngl",
    }
    parts = [row["model"]]
    for c in varying:
        v = _fa(row[c]) if c == "flash_attn" else row[c]
        parts.append(f"{short[c]}={v}")
    return " ".join(parts)


def _spread(g: pl.DataFrame, error: str) -> tuple[list[float], dict[str, Any]]:
    """Points and error bars of one line: mean ± sd, or median and 95% interval."""
    if error == "sd":
        bars = {"type": "data", "array": g["tps_sd"].to_list(), "visible": True}
        return g["tps_mean"].to_list(), bars
    m = [median_interval(s) for s in g["samples_tps"].to_list()]
    plus = [0.0 if math.isnan(x.high) else x.high - x.median for x in m]
    minus = [0.0 if math.isnan(x.low) else x.median - x.low for x in m]
    bars = {"type": "data", "array": plus, "arrayminus": minus, "visible": True}
    return [x.median for x in m], bars


def tps_vs_depth(
    frame: pl.DataFrame, *, title: str | None = None, error: Literal["sd", "interval"] = "sd"
) -> go.Figure:
    """Tokens/s against context depth: one panel per test (pp, tg), one line per model
    (and per settings combination when a sweep varied them).

    Args:
        frame: bench rows; error rows and rows without rates are left out.
        title: figure title.
        error: "sd": points are llama-bench's mean rate, bars the sample sd (how much the
            repetitions spread). "interval": points are the median rate, bars its
            distribution-free 95% interval (:func:`workbench.stats.median_interval`;
            none below 6 repetitions): where the bars of two depths overlap, the run
            cannot tell those depths apart.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ok = frame.filter(pl.col("tps_mean").is_not_null() & pl.col("error").is_null())
    tests = [t for t in _TESTS if t in set(ok["test"].to_list())]
    fig = make_subplots(
        rows=1,
        cols=max(len(tests), 1),
        subplot_titles=[f"{_TESTS[t]} ({t}{_n(ok, t)})" for t in tests] or ["no results"],
        shared_yaxes=False,
    )
    varying = _varying(ok) if ok.height else []
    keys = ["model", *_SETTINGS]
    palette = _palette()
    colors: dict[str, str] = {}
    shown: set[str] = set()
    for col, test in enumerate(tests, start=1):
        sub = ok.filter(pl.col("test") == test)
        for key, group in sub.group_by(keys, maintain_order=True):
            row = dict(zip(keys, key, strict=True))
            label = _label(row, varying)
            color = colors.setdefault(label, palette[len(colors) % len(palette)])
            g = group.sort("depth")
            y, bars = _spread(g, error)
            fig.add_trace(
                go.Scatter(
                    x=g["depth"].to_list(),
                    y=y,
                    error_y=bars,
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    showlegend=label not in shown,
                    line={"color": color},
                    hovertemplate="depth %{x}<br>%{y:.1f} t/s<extra>" + label + "</extra>",
                ),
                row=1,
                col=col,
            )
            shown.add(label)
        fig.update_xaxes(title_text="context depth (tokens)", row=1, col=col)
        fig.update_yaxes(title_text="tokens/s", rangemode="tozero", row=1, col=col)
    what = "mean ± sd" if error == "sd" else "median, 95% interval"
    fig.update_layout(
        title=title or f"Speed against context depth ({what})",
        legend_title_text="model",
        template=template(),
    )
    return fig


def _n(frame: pl.DataFrame, test: str) -> str:
    col = "n_prompt" if test == "pp" else "n_gen"
    values = sorted(set(frame.filter(pl.col("test") == test)[col].to_list()))
    return "/".join(str(v) for v in values)


def _palette() -> list[str]:
    import plotly.express as px

    return list(px.colors.qualitative.Plotly)


def sweep_bars(frame: pl.DataFrame, *, test: str = "tg", depth: int | None = None) -> go.Figure:
    """Tokens/s of each settings combination of one test as bars (error bars = sd), grouped
    by model: the picture of a ``-t 1,2 -fa 0,1`` sweep. ``depth`` picks one depth
    (default: the smallest in the frame)."""
    import plotly.graph_objects as go

    ok = frame.filter(
        pl.col("tps_mean").is_not_null() & pl.col("error").is_null() & (pl.col("test") == test)
    )
    if depth is None and ok.height:
        depth = int(ok["depth"].min())  # type: ignore[arg-type]
    ok = ok.filter(pl.col("depth") == depth)
    varying = _varying(ok) if ok.height else []
    fig = go.Figure()
    for (model,), group in ok.group_by(["model"], maintain_order=True):
        labels = [
            " ".join(_label(r, varying).split(" ")[1:]) or "default" for r in group.to_dicts()
        ]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=group["tps_mean"].to_list(),
                error_y={"type": "data", "array": group["tps_sd"].to_list(), "visible": True},
                name=str(model),
            )
        )
    where = f" @ d{depth}" if depth else ""
    fig.update_layout(
        template=template(),
        title=f"{_TESTS.get(test, test)} ({test}){where} by settings",
        barmode="group",
        yaxis_title="tokens/s",
        xaxis_title="settings",
        legend_title_text="model",
    )
    return fig


def ratio_figure(ratios: pl.DataFrame, *, baseline: str | None = None) -> go.Figure:
    """Paired speed ratios (:func:`workbench.speed.speed_ratios`) as points with their 95%
    intervals, one row per model and test, against a line at 1 (as fast as the
    baseline)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colors = _palette()
    for i, (test, group) in enumerate(ratios.group_by(["test"], maintain_order=True)):
        rows = group.to_dicts()
        labels = [f"{r['model']} {_test_label(r)}" for r in rows]
        ratio = [r["ratio"] for r in rows]
        plus = [0 if math.isnan(r["high"]) else r["high"] - r["ratio"] for r in rows]
        minus = [0 if math.isnan(r["low"]) else r["ratio"] - r["low"] for r in rows]
        fig.add_trace(
            go.Scatter(
                x=ratio,
                y=labels,
                mode="markers",
                marker={"size": 10, "color": colors[i % len(colors)]},
                error_x={"type": "data", "array": plus, "arrayminus": minus, "visible": True},
                name=_TESTS.get(str(test[0]), str(test[0])),
            )
        )
    fig.add_vline(x=1.0, line_dash="dash", line_color="grey")
    against = f" against {baseline}" if baseline else ""
    fig.update_layout(
        template=template(),
        title=f"speed{against}, repetition by repetition (median, 95% interval)",
        xaxis_title="tokens/s ratio",
        legend_title_text="test",
    )
    return fig


def _test_label(row: dict[str, Any]) -> str:
    n = row["n_prompt"] if row["test"] == "pp" else row["n_gen"]
    return f"{row['test']}{n}" + (f" @ d{row['depth']}" if row.get("depth") else "")
