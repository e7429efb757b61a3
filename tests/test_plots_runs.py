"""Figures of the runs frame: one box per model with every response as a point."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from workbench.plots.runs import (
    language_figure,
    length_figure,
    model_colors,
    run_figures,
    speed_figure,
    ttft_figure,
)
from workbench.schemas import RUN_SCHEMA
from workbench.store import rows_to_frame


def _row(
    model: str,
    ttft: float | None,
    tps: float | None,
    tokens: int | None,
    lang: str | None,
    reason: str = "stop",
) -> dict[str, object]:
    return {
        "run_id": "r1",
        "created_at": datetime.now(UTC),
        "model": model,
        "prompt_id": "p1",
        "language": lang,
        "ttft_s": ttft,
        "gen_tps": tps,
        "completion_tokens": tokens,
        "finish_reason": reason,
    }


@pytest.fixture
def runs() -> pl.DataFrame:
    return rows_to_frame(
        [
            _row("a", 0.10, 50.0, 20, "en"),
            _row("a", 0.30, 40.0, 25, "fr"),
            _row("a", 0.20, 45.0, 30, "en"),
            _row("b", 0.05, 90.0, 12, "en"),
            _row("b", 0.07, 80.0, 14, None),
            # a failed response: no figures, must not appear as a point
            _row("b", None, None, None, "en", reason="error"),
        ]
    )


def test_per_model_figures_keep_every_point(runs: pl.DataFrame) -> None:
    fig = speed_figure(runs)
    by_name = {t.name: list(t.y) for t in fig.data}
    assert by_name == {"a": [50.0, 40.0, 45.0], "b": [90.0, 80.0]}
    assert all(t.boxpoints == "all" for t in fig.data)
    assert fig.layout.yaxis.title.text == "generation tokens/s"

    ttft = ttft_figure(runs)
    assert {t.name: len(t.y) for t in ttft.data} == {"a": 3, "b": 2}
    length = length_figure(runs)
    assert sorted(v for t in length.data for v in t.y) == [12, 14, 20, 25, 30]


def test_colours_are_stable_across_figures(runs: pl.DataFrame) -> None:
    colors = model_colors(["b", "a", "b"])
    assert colors["a"] != colors["b"]
    for fig in (ttft_figure(runs), speed_figure(runs), language_figure(runs)):
        assert {t.name: t.marker.color for t in fig.data} == colors


def test_language_figure_groups_by_language(runs: pl.DataFrame) -> None:
    fig = language_figure(runs)
    assert fig.layout.boxmode == "group"
    a = next(t for t in fig.data if t.name == "a")
    b = next(t for t in fig.data if t.name == "b")
    assert list(a.x) == ["en", "fr", "en"]
    assert list(b.x) == ["en", "unknown"]  # a null language is shown, not dropped
    wall = language_figure(runs, metric="ttft_s")
    assert wall.layout.title.text == "Time to first token (s) by language"


def test_empty_frame_gives_a_labelled_empty_figure() -> None:
    empty = pl.DataFrame(schema=RUN_SCHEMA)
    figs = run_figures(empty)
    assert set(figs) == {"ttft", "speed", "length", "language"}
    for fig in figs.values():
        assert len(fig.data) == 0
        assert fig.layout.annotations[0].text == "no responses yet"


def test_unknown_metric_is_an_error(runs: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="no column 'nope'"):
        speed_figure(runs, metric="nope")
    assert set(run_figures(runs, languages=False)) == {"ttft", "speed", "length"}


def test_latency_figure_puts_first_answer_next_to_first_token() -> None:
    def thinking_row(model: str, ttft: float, ttfa: float | None) -> dict[str, object]:
        return {**_row(model, ttft, 10.0, 20, "en"), "ttfa_s": ttfa}

    frame = rows_to_frame(
        [
            thinking_row("thinker", 0.1, 2.5),  # thought for 2.4 s before answering
            thinking_row("thinker", 0.2, 3.0),
            thinking_row("thinker", 0.1, None),  # thinking cut by max_tokens: no answer
            thinking_row("plain", 0.05, 0.05),  # no thinking: the two are the same
        ]
    )
    fig = ttft_figure(frame)
    assert fig.layout.boxmode == "group"
    by_name = {t.name: list(zip(t.x, t.y, strict=True)) for t in fig.data}
    assert by_name["thinker"] == [
        ("first token", 0.1),
        ("first token", 0.2),
        ("first token", 0.1),
        ("first answer", 2.5),
        ("first answer", 3.0),
    ]
    assert by_name["plain"] == [("first token", 0.05), ("first answer", 0.05)]
    assert list(fig.layout.xaxis.categoryarray) == ["first token", "first answer"]
    assert {t.name: t.marker.color for t in fig.data} == model_colors(["thinker", "plain"])

    # A frame from before ttfa_s was recorded: the first token only.
    old = frame.drop("ttfa_s")
    assert {x for t in ttft_figure(old).data for x in t.x} == {"first token"}
