"""Reading votes: every format agrees, the arena dump, one-line errors naming row and column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench import ratings as R

from .helpers import simulate


def write_all(frame: pl.DataFrame, tmp_path: Path) -> list[Path]:
    paths = [tmp_path / f"votes.{ext}" for ext in ("csv", "parquet", "jsonl", "json")]
    frame.write_csv(paths[0])
    frame.write_parquet(paths[1])
    frame.write_ndjson(paths[2])
    paths[3].write_text(json.dumps(frame.to_dicts()))
    return paths


def test_read_votes_all_formats_agree(tmp_path: Path) -> None:
    frame = simulate(np.array([1000.0, 1100.0]), 50, np.random.default_rng(16)).with_columns(
        language=pl.lit("English")
    )
    for path in write_all(frame, tmp_path):
        back = R.read_votes(path)
        assert back.select("model_a", "model_b", "winner", "language").equals(frame), path


def test_read_arena_battle_dump(tmp_path: Path) -> None:
    """The public dump: a JSON array of objects with nested fields and extra columns."""
    dump = [
        {
            "question_id": "q1",
            "model_a": "gpt-4",
            "model_b": "claude-v1",
            "winner": "tie (bothbad)",
            "judge": "arena_user_1",
            "conversation_a": [{"role": "user", "content": "hi"}],
            "turn": 1,
            "anony": True,
            "language": "English",
            "tstamp": 1682351591.1322,
            "conv_metadata": {"sum_assistant_a_tokens": 120, "sum_assistant_b_tokens": 80},
        },
        {
            "question_id": "q2",
            "model_a": "claude-v1",
            "model_b": "gpt-4",
            "winner": "model_b",
            "judge": "arena_user_2",
            "turn": 1,
            "anony": True,
            "language": "German",
            "tstamp": 1682351600.5,
            "conv_metadata": {"sum_assistant_a_tokens": 50, "sum_assistant_b_tokens": 70},
        },
    ]
    path = tmp_path / "clean_battle_20230430.json"
    path.write_text(json.dumps(dump, indent=1))
    frame = R.read_votes(path)
    assert frame.height == 2
    assert frame["winner"].to_list() == ["tie (bothbad)", "model_b"]
    assert frame["len_a"].to_list() == [120, 50]
    assert "conversation_a" not in frame.columns
    assert R.leaderboard(frame, bootstrap=10)["model"][0] == "gpt-4"


def test_bad_winner_names_row_and_column(tmp_path: Path) -> None:
    frame = simulate(np.array([1000.0, 1100.0]), 30, np.random.default_rng(17))
    frame = frame.with_columns(
        winner=pl.when(pl.int_range(pl.len()) == 16).then(pl.lit("modle_a")).otherwise("winner")
    )
    for path in write_all(frame, tmp_path):
        with pytest.raises(R.VotesFileError) as err:
            R.read_votes(path)
        assert str(err.value) == (
            f"{path.name} row 17, column winner: 'modle_a' is not one of "
            "model_a, model_b, tie, tie (bothbad)"
        )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("model_a,model_b\nx,y\n", "votes.csv missing column 'winner'"),
        ("model_a,model_b,winner\nx,,model_a\n", "votes.csv row 1, column model_b: missing"),
        ("model_a,model_b,winner\nx,y,tie\nx,x,tie\n", "votes.csv row 2, column model_b: same"),
        ("model_a,model_b,winner\nx,y,\n", "votes.csv row 1, column winner: missing is not"),
        ("model_a,model_b,winner\n", "votes.csv no votes"),
    ],
)
def test_malformed_csv(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "votes.csv"
    path.write_text(content)
    with pytest.raises(R.VotesFileError, match="^" + message.replace("(", r"\(")):
        R.read_votes(path)


def test_malformed_json_lines_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "votes.jsonl"
    good = json.dumps({"model_a": "x", "model_b": "y", "winner": "tie"})
    path.write_text(f"{good}\n{good}\n{{not json\n")
    with pytest.raises(R.VotesFileError, match=r"^votes.jsonl row 3: invalid JSON"):
        R.read_votes(path)
    other = tmp_path / "votes.txt"
    other.write_text(good)
    with pytest.raises(R.VotesFileError, match="unknown file type"):
        R.read_votes(other)
    with pytest.raises(R.VotesFileNotFound, match=r"missing\.csv: no such file"):
        R.read_votes(tmp_path / "missing.csv")


def test_numeric_model_names_become_text() -> None:
    numeric = pl.DataFrame({"model_a": [1, 2], "model_b": [2, 3], "winner": ["tie", "model_a"]})
    assert R.validate_votes(numeric)["model_a"].dtype == pl.String
