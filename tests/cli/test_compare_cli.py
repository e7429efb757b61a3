"""`workbench compare` as a user runs it: a real subprocess on the bundled models."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.helpers.sse_server import ScriptedServer, chunk, sse, sse_headers
from workbench.backends.base import GenerationConfig, resolve_sampling


def _workbench(*args: str, data: Path, columns: int = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKBENCH_DATA": str(data), "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture()
def scripted() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


def _answer(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
    """A served answer with no counters of the server's own (as llama-cpp-python's)."""
    sse_headers(h)
    for piece in ("Waves", " fold", " in."):
        sse(h, chunk(piece))
        time.sleep(0.02)
    sse(h, chunk(finish="stop"))
    sse(h, "[DONE]")


@pytest.mark.slow
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
    # The shell's defaults are wb.compare's: GenerationConfig's, which leave sampling to
    # the model (the bundled GGUFs name none) and then to workbench's defaults.
    default = resolve_sampling(GenerationConfig())
    assert {(r["temperature"], r["top_p"], r["top_k"]) for r in rows} == {
        (default.temperature, default.top_p, default.top_k)
    }
    assert {r["sampling_defaults"] for r in rows} == {json.dumps(default.defaults)}
    stored = pl.read_parquet(tmp_path / "runs" / "*.parquet")
    assert stored.height == 2


@pytest.mark.slow
def test_compare_table_and_errors(tmp_path: Path, bad_files: dict[str, Path]) -> None:
    """A file that cannot start is reported once and gets no row; an error the other
    model meets names the flag the user typed (--ctx), not the config field."""
    long_prompt = " ".join(["word"] * 400)  # longer than a 256-token context
    p = _workbench(
        "compare",
        "-p",
        long_prompt,
        "-m",
        "smollm2",
        "-m",
        str(bad_files["truncated"]),
        "--ctx",
        "256",
        "--max-tokens",
        "6",
        "--no-store",
        data=tmp_path,
    )
    assert p.returncode == 1, p.stderr  # the one model that ran failed
    assert "Traceback" not in p.stderr
    skipped = [line for line in p.stderr.splitlines() if "truncated" in line]
    assert skipped == [line for line in p.stderr.splitlines() if "(skipped)" in line]
    assert len(skipped) == 1 and skipped[0].startswith("workbench compare: truncated: ")
    ctx = [line for line in p.stderr.splitlines() if "longer than the context" in line]
    assert len(ctx) == 1 and "--ctx" in ctx[0] and "n_ctx" not in ctx[0], p.stderr
    assert "smollm2-135m-instruct" in p.stdout and "tg t/s" in p.stdout
    assert "[error]" in p.stdout and "--ctx" in p.stdout and "n_ctx" not in p.stdout
    assert "truncated" not in p.stdout  # never started: no column, no table row
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_empty_prompts_are_refused_in_one_line(tmp_path: Path) -> None:
    import workbench as wb
    from workbench.errors import InputError

    for text in ("", "   ", "\n\t "):
        p = _workbench("compare", "-p", text, "-m", "smollm2", data=tmp_path)
        assert p.returncode == 2
        assert p.stderr == "workbench compare: the prompt is empty: give some text to send\n"
    with pytest.raises(InputError, match=r"prompt 2 .* is empty"):
        wb.compare(["Hi", "  "], models=["smollm2"], store=False)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_missing_model_in_a_prompt_set_is_reported_once(tmp_path: Path) -> None:
    """The other model answers all three prompts; no error row for the missing one; off
    a terminal, one progress line per finished response; the table names each prompt."""
    f = tmp_path / "three.jsonl"
    f.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "category": "math", "language": "en",
                        "prompt": f"{i}+{i}="}) + "\n"
            for i in (1, 2, 3)
        )
    )  # fmt: skip
    missing = tmp_path / "gone" / "missing-model.gguf"
    p = _workbench(
        "compare", "--prompts", str(f), "-m", str(missing), "-m", "smollm2",
        "--max-tokens", "2", "--temperature", "0", data=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    about_missing = [line for line in p.stderr.splitlines() if "missing-model" in line]
    assert about_missing == [
        f"workbench compare: missing-model: model file not found: {missing} (skipped)"
    ]
    progress = [line for line in p.stderr.splitlines() if line.startswith("workbench compare: [")]
    assert [line.split()[2] for line in progress] == ["[1/3]", "[2/3]", "[3/3]"]
    assert all("smollm2-135m-instruct, q" in line and "tokens in" in line for line in progress)
    stored = pl.read_parquet(tmp_path / "runs" / "*.parquet")
    assert stored["model"].to_list() == ["smollm2-135m-instruct"] * 3
    assert stored["prompt_id"].to_list() == ["q1", "q2", "q3"]
    assert stored["error"].null_count() == 3
    # The table: a prompt column tells the rows apart; headings name the prompt.
    assert "adhoc" not in p.stdout and "###" not in p.stdout
    assert "Prompt q2: 2+2=" in p.stdout
    lines = p.stdout.splitlines()
    head = next(line for line in lines if line.startswith("model"))
    assert head.split()[:2] == ["model", "prompt"]
    table = [line.split() for line in lines if line.startswith("smollm2-135m-instruct ")]
    assert [row[1] for row in table] == ["q1", "q2", "q3"]


def test_a_served_model_in_the_table(scripted: ScriptedServer, tmp_path: Path) -> None:
    """A name the server does not list warns; the table shows the client's generation
    rate when the server reported none, and wraps a long name instead of cutting it."""
    scripted.script = _answer
    scripted.gets = {"/v1/models": {"object": "list", "data": [{"id": "real-model"}]}}
    served = "a-served-model-whose-name-is-rather-long"
    p = _workbench(
        "compare", "-p", "Write a haiku.", "-m", f"{scripted.base_url}#{served}",
        "--no-store", data=tmp_path, columns=72,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    warning = [line for line in p.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and f"lists no model '{served}'" in warning[0]
    assert "real-model" in warning[0]
    name = f"{served}@127.0.0.1:{scripted.port}/v1"
    assert len(name) > 28
    lines = p.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("-----")) + 1
    first = lines[start].split()
    assert first[-1] == "stop" and first[-2] == "3"  # tokens counted from the chunks
    assert first[-3].endswith("*") and float(first[-3][:-1]) > 0  # tg: the wall-clock rate
    assert first[-4] == "-"  # pp: the server reported no prompt rate
    pieces = [first[0]]
    for line in lines[start + 1 :]:
        if not line.startswith(" ") and len(line.split()) == 1:
            pieces.append(line.strip())
        else:
            break
    assert len(pieces) > 1 and "".join(pieces) == name
    assert any(line.startswith("* tokens/s of wall time") for line in lines)


def test_a_terminal_sees_the_stream_labelled_by_model(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    scripted.script = _answer
    scripted.gets = {"/v1/models": {"object": "list", "data": [{"id": "m"}]}}
    master, slave = pty.openpty()
    env = {**os.environ, "WORKBENCH_DATA": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "compare", "-p", "Write a haiku.",
         "-m", f"{scripted.base_url}#m", "--no-store"],
        stdout=subprocess.PIPE, stderr=slave, env=env, text=True,
    )  # fmt: skip
    os.close(slave)
    got: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            got.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    err = b"".join(got).decode().replace("\r\n", "\n")
    assert proc.returncode == 0, err
    name = f"m@127.0.0.1:{scripted.port}/v1"
    assert f"── {name} ──\nWaves fold in.\n" in err
    assert "[1/1]" not in err  # no log lines on a terminal
    assert "Waves fold in." in out  # the table follows on stdout


def test_compare_prompt_set_with_unknown_model(tmp_path: Path) -> None:
    p = _workbench("compare", "--prompts", "coding", "-m", "no-such-model", data=tmp_path)
    assert p.returncode == 2
    assert "unknown model 'no-such-model'" in p.stderr
    assert p.stderr.count("\n") == 1


@pytest.mark.slow
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


@pytest.mark.slow
def test_wb_compare_checks_models_like_the_cli(tmp_path: Path) -> None:
    """The Python door: a missing file warns once and gets no row, the other model
    answers every prompt, with the same defaults as the shell."""
    import workbench as wb
    from workbench.errors import ModelError

    missing = tmp_path / "missing-model.gguf"
    with pytest.warns(UserWarning) as caught:
        frame = wb.compare(["1+1=", "2+2="], models=[str(missing), "smollm2"], max_tokens=2,
                           store=False)  # fmt: skip
    assert [str(w.message) for w in caught if w.category is UserWarning] == [
        f"missing-model: model file not found: {missing}"
    ]
    assert frame["model"].to_list() == ["smollm2-135m-instruct"] * 2
    assert frame["error"].null_count() == 2
    assert frame["temperature"].to_list() == [resolve_sampling(GenerationConfig()).temperature] * 2
    with pytest.raises(ModelError, match="no model can run: missing-model"), pytest.warns():
        wb.compare("Hi", models=[str(missing)], store=False)
