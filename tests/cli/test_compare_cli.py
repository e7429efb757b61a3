"""`workbench compare` as a user runs it: a real subprocess on the bundled models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl


def _workbench(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKBENCH_DATA": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_compare_json_prints_rows_only(tmp_path: Path) -> None:
    p = _workbench(
        "compare",
        "-p",
        "Name a colour.",
        "--max-tokens",
        "8",
        "--seed",
        "1",
        "--json",
        data=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)  # stdout is exactly one JSON document
    assert [r["model"] for r in rows] == ["gemma-3-270m", "smollm2-135m-instruct"]
    assert all(r["response"] and r["gen_tps"] > 0 for r in rows)
    stored = pl.read_parquet(tmp_path / "runs" / "*.parquet")
    assert stored.height == 2


def test_compare_table_and_errors(tmp_path: Path, bad_files: dict[str, Path]) -> None:
    p = _workbench(
        "compare",
        "-p",
        "Hi",
        "-m",
        "smollm2",
        "-m",
        str(bad_files["truncated"]),
        "--max-tokens",
        "6",
        "--no-store",
        data=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert "smollm2-135m-instruct" in p.stdout and "tg t/s" in p.stdout
    assert "[error]" in p.stdout and "truncated" in p.stdout
    err_lines = [line for line in p.stderr.splitlines() if "truncated" in line]
    assert len(err_lines) == 1 and err_lines[0].startswith("workbench compare: truncated")
    assert not (tmp_path / "runs").exists()


def test_compare_prompt_set_with_unknown_model(tmp_path: Path) -> None:
    p = _workbench("compare", "--prompts", "coding", "-m", "no-such-model", data=tmp_path)
    assert p.returncode == 2
    assert "unknown model 'no-such-model'" in p.stderr
    assert p.stderr.count("\n") == 1


def test_compare_prompt_file(tmp_path: Path) -> None:
    f = tmp_path / "two.jsonl"
    f.write_text(
        '{"id": "a", "category": "math", "language": "en", "prompt": "2+2="}\n'
        '{"id": "b", "category": "math", "language": "de", "prompt": "3+3="}\n'
    )
    p = _workbench(
        "compare",
        "--prompts",
        str(f),
        "-m",
        "smollm2",
        "--max-tokens",
        "4",
        "--json",
        data=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert [(r["prompt_id"], r["language"], r["prompt_set"]) for r in rows] == [
        ("a", "en", "two"),
        ("b", "de", "two"),
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x"}\n')
    p = _workbench("compare", "--prompts", str(bad), data=tmp_path)
    assert p.returncode == 2 and "bad.jsonl line 1" in p.stderr
