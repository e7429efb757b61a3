"""Side-by-side runs on the two real bundled models."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import llama_cpp
import pytest

from workbench.backends.base import GenerationConfig, Prompt
from workbench.runner import ResponseFinished, Runner, TokenChunk
from workbench.schemas import RUN_SCHEMA
from workbench.store import RunStore, rows_to_frame

CFG = GenerationConfig(temperature=0.0, seed=42, max_tokens=12, n_ctx=512)


@pytest.fixture(scope="module")
def runner(bundled: list[str], tmp_path_factory: pytest.TempPathFactory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    with Runner(bundled, CFG, store=store) as r:
        yield r


@pytest.mark.slow
def test_side_by_side_rows(runner: Runner) -> None:
    events = list(
        runner.stream([Prompt("Name a fruit.", id="fruit", category="demo", language="en")])
    )
    rows = [e.row for e in events if isinstance(e, ResponseFinished)]
    assert [r["model"] for r in rows] == runner.model_names
    streamed = {
        n: "".join(e.text for e in events if isinstance(e, TokenChunk) and e.model == n)
        for n in runner.model_names
    }
    for r in rows:
        assert r["error"] is None, r["error"]
        assert r["response"] and r["response"] == streamed[r["model"]]
        for col in ("ttft_s", "gen_tps", "prompt_tps", "total_s", "peak_rss_bytes"):
            assert r[col] is not None and r[col] > 0, col
        assert list(r) == list(RUN_SCHEMA), "a RunRow carries every column, in order"
        assert r["spawn_s"] is not None and r["load_s"] is not None
        # Left unset in CFG: workbench's defaults (the bundled GGUFs recommend none).
        assert (r["min_p"], r["repeat_penalty"]) == (0.05, 1.0)
        assert r["model_sha256"] and len(r["model_sha256"]) == 64
        assert r["arch"] in ("gemma3", "llama") and r["quant"] in ("Q4_K_M", "Q4_1")
        assert r["category"] == "demo" and r["language"] == "en"
        assert r["llama_cpp_version"] == llama_cpp.__version__
        assert json.loads(r["host"])["physical_cores"] >= 1
    stored = runner.store.load() if runner.store else None
    assert stored is not None and set(stored["row_id"]) >= {r["row_id"] for r in rows}


@pytest.mark.slow
def test_seed_and_temperature_zero_reproduce(runner: Runner) -> None:
    a = runner.run(["Give one word."])
    b = runner.run(["Give one word."])
    assert a["response"].to_list() == b["response"].to_list()
    assert all(a["response"].to_list())


@pytest.mark.slow
def test_reps_and_prompt_sets(runner: Runner) -> None:
    prompts = [Prompt("1+1=", id="a"), Prompt("2+2=", id="b")]
    one = runner.model_names[-1:]
    rows = [
        e.row for e in runner.stream(prompts, reps=2, models=one) if isinstance(e, ResponseFinished)
    ]
    frame = rows_to_frame(rows)
    assert frame.height == 2 * 2
    assert frame["prompt_id"].to_list() == ["a", "a", "b", "b"]
    assert sorted(set(frame["rep"].to_list())) == [0, 1]


@pytest.mark.slow
def test_failing_model_does_not_stop_the_others(
    smollm: Path, bad_files: dict[str, Path], tmp_path: Path
) -> None:
    store = RunStore(tmp_path)
    models = [str(bad_files["missing"]), str(bad_files["truncated"]), str(smollm)]
    with Runner(models, CFG, store=store) as r:
        frame = r.run(["Hi"])
    errors = dict(zip(frame["model"], frame["error"], strict=True))
    assert "not found" in errors["does-not-exist"]
    assert errors["does-not-exist"].startswith("does-not-exist")
    assert "truncated" in errors["truncated"]
    assert errors[smollm.stem.lower()] is None
    assert store.load().height == 3, "failed rows are stored with their error"


@pytest.mark.slow
def test_abort_in_llama_cpp_is_contained(smollm: Path, tmp_path: Path) -> None:
    """A GGUF that makes llama.cpp abort the process: that model's row carries the abort,
    the other model's row arrives, and this process lives on."""
    from workbench.backends.llama_cpp import LlamaCppBackend
    from workbench.models.registry import ModelRef
    from workbench.testing import write_fixture

    bad = write_fixture("gemma4", tmp_path / "gemma4-abort.gguf", break_for_abort=True)

    def factory(ref: ModelRef) -> LlamaCppBackend:
        # validate=False: let the file reach llama.cpp (validation would refuse it)
        return LlamaCppBackend(ref.path, name=ref.name, validate=ref.name != "gemma4-abort")

    with Runner([str(bad), str(smollm)], CFG, backend_factory=factory) as r:
        frame = r.run(["Hi"])
    err = frame.filter(frame["model"] == "gemma4-abort")["error"][0]
    assert err and "llama.cpp stopped the worker" in err and "SIGABRT" in err, err
    ok = frame.filter(frame["model"] != "gemma4-abort")
    assert ok["error"][0] is None and ok["response"][0]


def test_validation_refuses_the_abort_file_before_loading(tmp_path: Path) -> None:
    from workbench.testing import write_fixture

    bad = write_fixture("gemma4", tmp_path / "gemma4-abort.gguf", break_for_abort=True)
    with Runner([str(bad)], CFG) as r:
        frame = r.run(["Hi"])
    assert "rope.dimension_count_swa" in frame["error"][0]


@pytest.mark.slow
def test_stop_yields_cancelled_row(bundled: list[str], tmp_path: Path) -> None:
    cancel = threading.Event()
    cfg = GenerationConfig(temperature=0.0, max_tokens=300, n_ctx=1024)
    store = RunStore(tmp_path)
    rows = []
    with Runner(bundled[-1:], cfg, store=store) as r:
        for ev in r.stream(["Count slowly from one to two hundred."], cancel=cancel):
            if isinstance(ev, TokenChunk):
                cancel.set()
            if isinstance(ev, ResponseFinished):
                rows.append(ev.row)
    assert rows[0]["finish_reason"] == "cancelled"
    assert rows[0]["response"]
    assert isinstance(rows[0]["seed"], int), "the seed drawn for an open config is recorded"
    assert store.load()["finish_reason"].to_list() == ["cancelled"]


@pytest.mark.slow
def test_memory_budget_unloads_least_recently_used(bundled: list[str]) -> None:
    cfg = GenerationConfig(temperature=0.0, max_tokens=2, n_ctx=256)
    # A budget that holds one bundled model but not two.
    with Runner(bundled, cfg, budget_bytes=300 * 2**20) as r:
        r.run(["Hi"])
        loaded = [n for n in r.model_names if r._slots[n].backend.loaded]
        assert loaded == [r.model_names[-1]]
    with Runner(bundled, cfg, budget_bytes=8 * 2**30) as r:
        r.run(["Hi"])
        assert all(r._slots[n].backend.loaded for n in r.model_names)


def test_compare_works_from_a_plain_script_without_a_main_guard(
    smollm: Path, tmp_path: Path
) -> None:
    """The README's snippet saved as a script: workers start as their own module, never by
    re-importing the caller's __main__ (which is what multiprocessing's spawn did)."""
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import workbench as wb
            frame = wb.compare("Name a colour.", models=[{str(smollm)!r}], max_tokens=4,
                               n_ctx=256, store=False)
            print("ERROR", frame["error"][0])
            print("TEXT", bool(frame["response"][0]))
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ERROR None" in proc.stdout and "TEXT True" in proc.stdout, proc.stdout
