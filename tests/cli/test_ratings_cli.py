"""``workbench ratings``: table, --json, options, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench.cli import main

WINNERS = np.array(["model_a", "model_b", "tie", "tie (bothbad)"])


@pytest.fixture
def votes_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    names = np.array(["strong", "middle", "weak"])
    strength = np.array([1300.0, 1000.0, 700.0])
    n = 1200
    a = rng.integers(0, 3, n)
    b = (a + rng.integers(1, 3, n)) % 3
    p = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 400))
    w = np.where(rng.random(n) < 0.1, 2, np.where(rng.random(n) < p, 0, 1))
    frame = pl.DataFrame(
        {
            "model_a": names[a],
            "model_b": names[b],
            "winner": WINNERS[w],
            "category": rng.choice(["code", "chat"], n),
            "len_a": rng.integers(50, 500, n),
            "len_b": rng.integers(50, 500, n),
        }
    )
    path = tmp_path / "votes.csv"
    frame.write_csv(path)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(["ratings", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_json_rows(votes_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, str(votes_csv), "--bootstrap", "200", "--seed", "1")
    assert [r["model"] for r in rows] == ["strong", "middle", "weak"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert {"model", "rating", "ci_low", "ci_high", "battles", "rank"} <= r.keys()
        assert r["ci_low"] < r["rating"] < r["ci_high"]
    assert sum(r["battles"] for r in rows) == 2 * 1200
    assert sum(r["rating"] for r in rows) / 3 == pytest.approx(1000.0)


def test_table(votes_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ratings", str(votes_csv), "--bootstrap", "100"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[:4] == ["rank", "model", "rating", "95%"]
    assert lines[1].split()[:2] == ["1", "strong"]
    assert len(lines) == 4
    assert "1200 votes among 3 models" in captured.err


def test_options(votes_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anchored = run_json(capsys, str(votes_csv), "--anchor", "weak=800", "--ci", "sandwich")
    weak = next(r for r in anchored if r["model"] == "weak")
    assert weak["rating"] == pytest.approx(800.0)
    elo = run_json(capsys, str(votes_csv), "--method", "elo", "--bootstrap", "50")
    assert elo[0]["model"] == "strong" and elo[0]["ci_low"] < elo[0]["ci_high"]
    by = run_json(capsys, str(votes_csv), "--by", "category", "--bootstrap", "50")
    assert {r["category"] for r in by} == {"code", "chat"} and len(by) == 6
    sc = run_json(capsys, str(votes_csv), "--style-control", "--bootstrap", "50")
    assert "rating_sc" in sc[0] and "rank_sc" in sc[0]
    dropped = run_json(capsys, str(votes_csv), "--ties", "drop", "--bootstrap", "0")
    assert dropped[0]["ci_low"] is None and dropped[0]["rank"] == 1


def test_malformed_file_is_one_line_exit_2(
    votes_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = votes_csv.read_text().splitlines()
    fields = lines[17].split(",")
    fields[2] = "modle_a"
    lines[17] = ",".join(fields)
    votes_csv.write_text("\n".join(lines) + "\n")
    assert main(["ratings", str(votes_csv), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "workbench ratings: votes.csv row 17, column winner: 'modle_a' is not one of "
        "model_a, model_b, tie, tie (bothbad)"
    )


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--anchor", "strong"], "expected MODEL=VALUE"),
        (["--anchor", "nobody=1000"], "anchor model 'nobody' has no votes"),
        (["--by", "language"], "no such column"),
        (["--method", "elo", "--ci", "sandwich"], "Bradley-Terry only"),
    ],
)
def test_user_errors(
    votes_csv: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    assert main(["ratings", str(votes_csv), *argv]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("workbench ratings: ") and fragment in last


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ratings", str(tmp_path / "nope.parquet")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_module_entry_point(votes_csv: Path) -> None:
    """`python -m workbench ratings ... --json` prints one JSON document on stdout."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "ratings",
            str(votes_csv),
            "--bootstrap",
            "20",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["model"] == "strong"
