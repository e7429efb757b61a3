"""HistoryView: stored responses as a table, filtered, with their figures.

Filters (model, prompt set, category, language, conversation) are dropdowns; the
filtered Polars frame is kept in ``view.frame`` and shown as a readable table
(:func:`runs_table_html`: numbers formatted with their units, long text wrapped, empty
cells for missing values, the rows of one conversation together under a heading, turn by
turn), and the figures of :mod:`workbench.plots.runs` are drawn from it.
"""

from __future__ import annotations

import html
import math
from datetime import datetime
from typing import Any

try:
    import ipywidgets as widgets
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "workbench.widgets needs ipywidgets: pip install 'workbench[notebook]'"
    ) from e

import polars as pl

from workbench.store import RunStore
from workbench.widgets.compare import close_tree, figure_bundle

__all__ = [
    "FILTERS",
    "TABLE_COLUMNS",
    "HistoryView",
    "conversation_order",
    "filter_runs",
    "runs_table_html",
]

FILTERS = ("model", "prompt_set", "category", "language", "conversation_id")
"""Columns the history can be filtered on."""

TABLE_COLUMNS = (
    "created_at",
    "model",
    "prompt_set",
    "prompt_id",
    "turn",
    "category",
    "language",
    "finish_reason",
    "ttft_s",
    "ttfa_s",
    "gen_tps",
    "completion_tokens",
    "prompt",
    "response",
    "error",
)
"""Columns the table shows (the frame in ``view.frame`` has them all)."""

_HEADERS = {
    "created_at": "time (UTC)",
    "prompt_set": "prompt set",
    "prompt_id": "prompt id",
    "finish_reason": "finish",
    "ttft_s": "TTFT (s)",
    "ttfa_s": "first answer (s)",
    "gen_tps": "tokens/s",
    "completion_tokens": "tokens",
}
_NUMBER_FORMATS = {
    "turn": "d",
    "ttft_s": ".2f",
    "ttfa_s": ".2f",
    "gen_tps": ".1f",
    "completion_tokens": "d",
}
_TEXT_COLUMNS = {"prompt": 160, "response": 400, "error": 240}
"""Long-text columns and how many characters of each a cell shows (the rest on hover)."""
_CELL = "padding:3px 8px;border-bottom:1px solid var(--jp-border-color2,#e0e0e0);"
_TEXT_CELL = "white-space:pre-wrap;word-break:break-word;min-width:16ch;max-width:48ch;"


def _cell(col: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"<td style='{_CELL}'></td>"
    if col in _NUMBER_FORMATS:
        return (
            f"<td style='{_CELL}text-align:right;font-variant-numeric:tabular-nums'>"
            f"{format(value, _NUMBER_FORMATS[col])}</td>"
        )
    if isinstance(value, datetime):
        return f"<td style='{_CELL}white-space:nowrap'>{value:%Y-%m-%d %H:%M:%S}</td>"
    text = str(value)
    limit = _TEXT_COLUMNS.get(col)
    if limit is None:
        return f"<td style='{_CELL}white-space:nowrap'>{html.escape(text)}</td>"
    shown = text if len(text) <= limit else text[:limit].rstrip() + "…"
    title = f" title='{html.escape(text, quote=True)}'" if shown != text else ""
    color = "color:var(--jp-error-color1,#c0392b);" if col == "error" else ""
    return f"<td style='{_CELL}{_TEXT_CELL}{color}'{title}>{html.escape(shown)}</td>"


def conversation_order(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the rows of each conversation together, turn by turn (then in the
    order they were made), where the conversation's first row in ``frame`` was; rows of
    single prompts (no ``conversation_id``) keep their places."""
    if "conversation_id" not in frame.columns or frame["conversation_id"].null_count() == (
        frame.height
    ):
        return frame
    pos = pl.col("_wb_pos")
    key = (
        pl.when(pl.col("conversation_id").is_null())
        .then(pl.lit("row ") + pos.cast(pl.String))
        .otherwise(pl.lit("conversation ") + pl.col("conversation_id"))
    )
    within = [c for c in ("turn", "created_at") if c in frame.columns]
    return (
        frame.with_row_index("_wb_pos")
        .with_columns(pos.min().over(key).alias("_wb_group"))
        .sort(["_wb_group", *within, "_wb_pos"])
        .drop("_wb_pos", "_wb_group")
    )


def _conversation_heading(conv: pl.DataFrame, width: int) -> str:
    cid = conv["conversation_id"][0]
    turns = conv["turn"].n_unique() if "turn" in conv.columns else None
    models = conv["model"].n_unique() if "model" in conv.columns else None
    parts = [f"conversation {cid}"]
    if turns is not None:
        parts.append(f"{turns} turn{'s' * (turns != 1)}")
    if models is not None:
        parts.append(f"{models} model{'s' * (models != 1)}")
    return (
        f"<tr class='wb-conversation'><td colspan='{width}' style='{_CELL}padding-top:8px;"
        "font-weight:600;color:var(--jp-ui-font-color2,#555);"
        f"background:var(--jp-layout-color2,#f5f5f5)'>{html.escape(' · '.join(parts))}</td></tr>"
    )


def runs_table_html(frame: pl.DataFrame, columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """Stored responses as an HTML table a person reads: numbers with fixed decimals
    under headers that carry the unit, times without time zone noise, long texts wrapped
    and shortened (the full text on hover), missing values as empty cells, the rows of a
    conversation together under a heading (:func:`conversation_order`). Every value is
    HTML-escaped."""
    cols = [c for c in columns if c in frame.columns]
    head = "".join(
        f"<th style='{_CELL}text-align:left;position:sticky;top:0;"
        f"background:var(--jp-layout-color1,#fff)'>{html.escape(_HEADERS.get(c, c))}</th>"
        for c in cols
    )
    frame = conversation_order(frame)
    convs = "conversation_id" in frame.columns
    lines: list[str] = []
    current: str | None = None
    for row in frame.iter_rows(named=True):
        cid = row["conversation_id"] if convs else None
        if cid is not None and cid != current:
            lines.append(
                _conversation_heading(frame.filter(pl.col("conversation_id") == cid), len(cols))
            )
        current = cid
        lines.append(
            "<tr style='vertical-align:top'>" + "".join(_cell(c, row[c]) for c in cols) + "</tr>"
        )
    body = "".join(lines)
    return (
        "<table class='wb-runs-table' style='border-collapse:collapse;font-size:12px;"
        f"color:var(--jp-ui-font-color1,inherit)'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


_ALL = "(all)"
_NONE = "(none)"


def filter_runs(runs: pl.DataFrame, **equals: str | None) -> pl.DataFrame:
    """Rows whose columns equal the given values; None (or missing) means no filter.

    ``filter_runs(runs, model="smollm2-135m-instruct", language="fr")``. The value
    ``"(none)"`` selects rows where that column is null (ad-hoc prompts have no set).
    """
    for col, value in equals.items():
        if col not in runs.columns:
            raise ValueError(f"runs frame has no column {col!r}")
        if value is None:
            continue
        runs = runs.filter(pl.col(col).is_null() if value == _NONE else pl.col(col) == value)
    return runs


def _options(runs: pl.DataFrame, col: str) -> list[str]:
    values = runs[col].unique().to_list()
    opts = sorted(v for v in values if v is not None)
    if any(v is None for v in values):
        opts.append(_NONE)
    return [_ALL, *opts]


class HistoryView(widgets.VBox):
    """Stored responses: filters, a table of the newest rows, and the run figures.

    Args:
        store: where to read runs from (default: ``RunStore()`` under data/).
        rows: how many of the newest rows the table shows.
    """

    def __init__(self, store: RunStore | None = None, *, rows: int = 50) -> None:
        self.store = store if store is not None else RunStore()
        self.table_rows = rows
        self.runs: pl.DataFrame = pl.DataFrame()
        """Every stored row (as of the last refresh)."""
        self.frame: pl.DataFrame = pl.DataFrame()
        """The rows passing the filters."""
        self.figures: dict[str, Any] = {}
        """Plotly figures (ttft, speed, length, language) of ``frame``."""
        self.filters = {
            col: widgets.Dropdown(
                options=[_ALL],
                value=_ALL,
                description=col.replace("_", " "),
                layout=widgets.Layout(width="240px"),
            )
            for col in FILTERS
        }
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.add_class("wb-history-refresh")
        self.summary = widgets.HTML("")
        self.table = widgets.HTML("")
        self.table.add_class("wb-history-table")
        self.figure_outputs = {k: widgets.Output() for k in ("ttft", "speed", "length", "language")}
        self.figures_box = widgets.GridBox(
            list(self.figure_outputs.values()),
            layout=widgets.Layout(grid_template_columns="repeat(2, minmax(0, 1fr))", width="100%"),
        )
        self.figures_box.add_class("wb-history-figures")
        self._updating = False
        for dd in self.filters.values():
            dd.observe(self._on_filter, names="value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        filter_box = widgets.HBox(
            [*self.filters.values(), self.refresh_button],
            layout=widgets.Layout(flex_flow="row wrap"),
        )
        super().__init__(
            [filter_box, self.summary, self.table, self.figures_box],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("wb-history")
        self.refresh()

    def selection(self) -> dict[str, str | None]:
        """The current filter values (None where all values pass)."""
        return {c: (None if dd.value == _ALL else dd.value) for c, dd in self.filters.items()}

    def refresh(self) -> None:
        """Re-read the store, update the filter choices, redraw table and figures."""
        self.runs = self.store.load()
        self._updating = True
        try:
            for col, dd in self.filters.items():
                opts = _options(self.runs, col)
                keep = dd.value if dd.value in opts else _ALL
                dd.options = opts
                dd.value = keep
        finally:
            self._updating = False
        self.update()

    def update(self) -> None:
        """Apply the filters to the rows read at the last refresh and redraw."""
        from workbench.plots.runs import run_figures

        self.frame = filter_runs(self.runs, **self.selection())
        n, total = self.frame.height, self.runs.height
        convs = (
            self.frame["conversation_id"].drop_nulls().n_unique()
            if "conversation_id" in self.frame.columns
            else 0
        )
        in_convs = f" ({convs} conversation{'s' * (convs != 1)})" if convs else ""
        self.summary.value = (
            f"<span style='color:var(--jp-ui-font-color2,#555)'>{n} of {total} stored responses"
            f"{in_convs}"
            f"{f'; the newest {self.table_rows} shown' if n > self.table_rows else ''}</span>"
        )
        shown = self.frame.sort("created_at", descending=True).head(self.table_rows)
        self.table.value = (
            f"<div style='max-height:28em;overflow:auto'>{runs_table_html(shown)}</div>"
        )
        self.figures = run_figures(self.frame)
        for key, out in self.figure_outputs.items():
            out.outputs = (figure_bundle(self.figures[key]),)

    def close(self) -> None:
        """Close the view and the widgets inside it."""
        for child in self.children:
            close_tree(child)
        super().close()

    def _on_filter(self, _change: dict[str, Any]) -> None:
        if not self._updating:
            self.update()
