"""HistoryView on a real store: filters narrow the frame, the table and the figures."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("ipywidgets")

from workbench.store import RunStore
from workbench.widgets import HistoryView, filter_runs
from workbench.widgets.history import conversation_order, runs_table_html

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _row(
    i: int,
    model: str,
    prompt_set: str | None,
    category: str | None,
    language: str | None,
    tps: float,
) -> dict[str, object]:
    return {
        "run_id": "run1",
        "row_id": f"row{i}",
        "created_at": T0 + timedelta(seconds=i),
        "model": model,
        "prompt_set": prompt_set,
        "prompt_id": f"p{i}",
        "prompt": f"prompt number {i}",
        "category": category,
        "language": language,
        "response": f"answer <b>{i}</b>",
        "finish_reason": "stop",
        "ttft_s": 0.1 * (i + 1),
        "gen_tps": tps,
        "completion_tokens": 10 + i,
    }


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path)
    s.append(
        [
            _row(0, "alpha", "coding", "code", "en", 40.0),
            _row(1, "alpha", "multilingual", "translation", "fr", 35.0),
            _row(2, "beta", "coding", "code", "en", 80.0),
            _row(3, "beta", "multilingual", "translation", "de", 75.0),
            _row(4, "beta", None, None, None, 70.0),  # a prompt typed into the panel
        ]
    )
    return s


def test_filter_runs(store: RunStore) -> None:
    runs = store.load()
    assert filter_runs(runs).height == 5
    assert filter_runs(runs, model="beta", language="en")["prompt_id"].to_list() == ["p2"]
    assert filter_runs(runs, prompt_set="(none)")["prompt_id"].to_list() == ["p4"]
    assert filter_runs(runs, model=None, category="translation").height == 2
    with pytest.raises(ValueError, match="no column 'colour'"):
        filter_runs(runs, colour="red")


def test_history_lists_filters_and_redraws(store: RunStore) -> None:
    view = HistoryView(store, rows=3)
    try:
        assert view.frame.height == 5
        assert view.filters["model"].options == ("(all)", "alpha", "beta")
        assert view.filters["language"].options == ("(all)", "de", "en", "fr", "(none)")
        assert "5 of 5 stored responses" in view.summary.value
        assert "the newest 3 shown" in view.summary.value
        # Newest first; the response's HTML is escaped, not rendered.
        assert view.table.value.index("p4") < view.table.value.index("p2")
        assert "p0" not in view.table.value
        assert "answer &lt;b&gt;4&lt;/b&gt;" in view.table.value
        speed = view.figures["speed"]
        assert {t.name: len(t.y) for t in speed.data} == {"alpha": 2, "beta": 3}
        assert sorted(t.name for t in view.figures["language"].data) == ["alpha", "beta"]

        view.filters["model"].value = "beta"
        assert view.frame["model"].unique().to_list() == ["beta"]
        assert {t.name for t in view.figures["speed"].data} == {"beta"}
        assert "3 of 5" in view.summary.value
        view.filters["language"].value = "de"
        assert view.frame["prompt_id"].to_list() == ["p3"]
        (out,) = view.figure_outputs["ttft"].outputs
        assert out["data"]["application/vnd.plotly.v1+json"]["data"][0]["y"] == [pytest.approx(0.4)]

        # New rows appear on refresh; filters that still apply are kept.
        store.append([_row(5, "gamma", "coding", "code", "de", 20.0)])
        view.refresh()
        assert "gamma" in view.filters["model"].options
        assert view.selection() == {
            "model": "beta",
            "prompt_set": None,
            "category": None,
            "language": "de",
            "conversation_id": None,
        }
        view.filters["model"].value = "(all)"
        assert sorted(view.frame["model"].to_list()) == ["beta", "gamma"]
    finally:
        view.close()


def test_empty_store_shows_empty_figures(tmp_path: Path) -> None:
    view = HistoryView(RunStore(tmp_path))
    try:
        assert view.frame.height == 0
        assert "0 of 0" in view.summary.value
        assert all(len(f.data) == 0 for f in view.figures.values())
        assert isinstance(view.frame, pl.DataFrame)
    finally:
        view.close()


def test_table_is_readable(store: RunStore) -> None:
    long_answer = "word " * 200
    store.append([{**_row(6, "gamma", None, None, None, 12.3456), "response": long_answer}])
    view = HistoryView(store)
    try:
        table = view.table.value
        assert "<table class='wb-runs-table'" in table
        assert "_repr_html_" not in table and "shape:" not in table  # not Polars' HTML
        for header in ("time (UTC)", "TTFT (s)", "tokens/s", "prompt set"):
            assert f">{header}</th>" in table
        assert ">12.3<" in table and ">12.3456<" not in table  # one decimal for tokens/s
        assert ">0.70<" in table  # TTFT with two decimals
        assert ">2025-01-01 00:00:06<" in table
        assert "null" not in table and "&quot;" not in table and '"' not in table
        assert "white-space:pre-wrap" in table  # long text wraps
        # A long response is shortened in its cell, the full text is on hover.
        shown = re.search(r"<td [^>]*title='(word [^']*)'>(word [^<]*)</td>", table)
        assert shown and shown.group(1).strip() == long_answer.strip()
        assert shown.group(2).endswith("…") and len(shown.group(2)) < len(long_answer)
    finally:
        view.close()


def test_runs_table_formats_missing_values_as_empty_cells() -> None:
    frame = pl.DataFrame(
        {
            "model": ["a", "b"],
            "ttft_s": [None, float("nan")],
            "gen_tps": [1.0, None],
            "error": [None, "b: <boom>"],
        }
    )
    table = runs_table_html(frame)
    assert "None" not in table and "nan" not in table
    assert table.count("<td style='padding:3px 8px;border-bottom") == 8
    assert "b: &lt;boom&gt;" in table
    assert ">1.0<" in table


def _turn(i: int, model: str, conv: str | None, turn: int) -> dict[str, object]:
    return {**_row(i, model, None, None, None, 50.0), "conversation_id": conv, "turn": turn}


def test_history_groups_rows_by_conversation(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.append(
        [
            _turn(0, "alpha", "chat1", 1),
            _turn(1, "beta", "chat1", 1),
            _turn(2, "alpha", None, 1),  # a single prompt between the turns
            _turn(3, "alpha", "chat2", 1),  # another chat, one model
            _turn(4, "alpha", "chat1", 2),
            _turn(5, "beta", "chat1", 2),
        ]
    )
    view = HistoryView(store)
    try:
        assert "6 of 6 stored responses (2 conversations)" in view.summary.value
        table = view.table.value
        headings = re.findall(r"<tr class='wb-conversation'><td [^>]*>([^<]*)</td>", table)
        # Newest first by conversation: chat1 was answered last, then chat2, the single
        # prompt; within a conversation turn by turn.
        assert headings == ["conversation chat1 · 2 turns · 2 models",
                            "conversation chat2 · 1 turn · 1 model"]  # fmt: skip
        order = re.findall(r">(p\d)<", table)
        assert order == ["p0", "p1", "p4", "p5", "p3", "p2"]
        assert table.index("conversation chat2") < table.index(">p3<")
        assert table.index(">p3<") < table.index(">p2<")
        assert ">turn</th>" in table and ">first answer (s)</th>" in table

        assert view.filters["conversation_id"].options == ("(all)", "chat1", "chat2", "(none)")
        view.filters["conversation_id"].value = "chat1"
        assert sorted(view.frame["prompt_id"].to_list()) == ["p0", "p1", "p4", "p5"]
        assert "(1 conversation)" in view.summary.value
        view.filters["conversation_id"].value = "(none)"
        assert view.frame["prompt_id"].to_list() == ["p2"]
        assert "wb-conversation" not in view.table.value
    finally:
        view.close()


def test_conversation_order_leaves_single_prompts_in_place() -> None:
    frame = pl.DataFrame(
        {
            "prompt_id": ["a", "b", "c", "d"],
            "conversation_id": [None, "x", None, "x"],
            "turn": [1, 2, 1, 1],
        }
    )
    assert conversation_order(frame)["prompt_id"].to_list() == ["a", "d", "b", "c"]
    plain = frame.drop("conversation_id")
    assert conversation_order(plain)["prompt_id"].to_list() == ["a", "b", "c", "d"]
