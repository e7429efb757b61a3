"""Memory vs context length, one line per model, and the same frames as tables in GiB
(frames from :func:`workbench.models.memory.plan_frame` and ``context_table``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.plots.theme import template

if TYPE_CHECKING:
    import plotly.graph_objects as go
    import polars as pl

_GIB = 1024**3


def gib_table(frame: pl.DataFrame, *, decimals: int = 3) -> pl.DataFrame:
    """``frame`` for reading: every ``*_bytes`` column becomes a ``*_gib`` column in GiB
    (rounded to ``decimals``), in the same place; other columns are kept as they are."""
    import polars as pl

    return frame.select(
        [
            (pl.col(c) / _GIB).round(decimals).alias(c.removesuffix("_bytes") + "_gib")
            if c.endswith("_bytes")
            else pl.col(c)
            for c in frame.columns
        ]
    )


def memory_vs_context(
    frame: pl.DataFrame,
    *,
    column: str = "total_bytes",
    budget_gib: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """Lines of ``column`` (GiB) against context length, one per model.

    Args:
        frame: rows with at least model, ctx and the column (plan_frame output).
        column: total_bytes, kv_bytes, weights_bytes or state_bytes.
        budget_gib: draw a horizontal line at this memory budget.
        title: figure title (default names the column).
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for (model,), part in frame.sort("ctx").group_by(["model"], maintain_order=True):
        fig.add_trace(
            go.Scatter(
                x=part["ctx"].to_list(),
                y=[v / _GIB for v in part[column].to_list()],
                mode="lines+markers",
                name=str(model),
            )
        )
    if budget_gib is not None:
        fig.add_hline(y=budget_gib, line_dash="dash", annotation_text=f"{budget_gib:g} GiB")
    label = column.removesuffix("_bytes").replace("_", " ")
    fig.update_layout(
        title=title or f"Memory ({label}) vs context length",
        xaxis_title="context length (tokens)",
        yaxis_title=f"{label} (GiB)",
        xaxis_type="log",
        template=template(),
    )
    return fig


def memory_breakdown(frame: pl.DataFrame, *, ctx: int) -> go.Figure:
    """Stacked bars of weights, KV cache and recurrent state per model at one context."""
    import plotly.graph_objects as go

    part = frame.filter(frame["ctx"] == ctx)
    fig = go.Figure()
    for col, name in (
        ("weights_bytes", "weights"),
        ("kv_bytes", "KV cache"),
        ("state_bytes", "recurrent state"),
    ):
        fig.add_trace(
            go.Bar(x=part["model"].to_list(), y=[v / _GIB for v in part[col].to_list()], name=name)
        )
    fig.update_layout(
        barmode="stack",
        title=f"Memory at {ctx} tokens",
        yaxis_title="GiB",
        template=template(),
    )
    return fig
