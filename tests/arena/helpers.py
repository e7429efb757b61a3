"""Shared helpers for the arena tests: study files, prompt files, answer pools, servers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from tests.helpers.servers import free_port as free_port  # re-exported for the arena tests
from workbench.backends.base import GenerationConfig, Prompt
from workbench.models.registry import GEMMA_NAME, SMOLLM_NAME, bundled_models
from workbench.store import RunStore, rows_to_frame
from workbench.testing.postgres import PostgresMissing, TempPostgres

BUNDLED = (GEMMA_NAME, SMOLLM_NAME)
MAX_TOKENS = 12
GEN = GenerationConfig(temperature=0.7, top_p=0.95, top_k=40, max_tokens=MAX_TOKENS, n_ctx=512)

PROMPTS = [
    {"id": "t-sky", "category": "science", "language": "en", "prompt": "Why is the sky blue?"},
    {"id": "t-sum", "category": "math", "language": "en", "prompt": "What is 2 + 3?"},
    {"id": "t-hallo", "category": "writing", "language": "de", "prompt": "Sag Hallo."},
]


def need_models() -> None:
    if len(bundled_models()) < 2:
        pytest.skip("bundled models missing (make models)")


def write_prompts(directory: Path, prompts: Sequence[dict[str, str]] = PROMPTS) -> Path:
    p = directory / "prompts.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in prompts), encoding="utf-8")
    return p


def study_text(
    directory: Path,
    *,
    models: Sequence[str] = BUNDLED,
    raters: Sequence[tuple[str, str, str]] = (
        ("alice", "alice-secret-1", "rater"),
        ("bob", "bob-secret-22", "rater"),
        ("boss", "boss-secret-333", "admin"),
    ),
    runs_root: Path | None = None,
    pool_only: bool = False,
    free_prompts: bool = False,
    max_tokens: int = MAX_TOKENS,
    extra_top: str = "",
    extra_limits: str = "",
    max_open: int | None = None,
) -> str:
    """A study TOML over the test prompts (written next to it)."""
    write_prompts(directory)
    lines = [
        'name = "test"',
        f"models = {json.dumps(list(models))}",
        'prompts = ["prompts.jsonl"]',
        f"free_prompts = {str(free_prompts).lower()}",
        *([] if "votes_db =" in extra_top else ['votes_db = "votes/test.sqlite"']),
        extra_top,
        "[generation]",
        f"max_tokens = {max_tokens}",
        "temperature = 0.7",
        "n_ctx = 512",
        "[pool]",
        f"only = {str(pool_only).lower()}",
    ]
    if runs_root is not None:
        lines.append(f"runs_root = {json.dumps(str(runs_root))}")
    lines += ["[limits]", "max_reason_chars = 200", "leaderboard_bootstrap = 20", extra_limits]
    if max_open is not None:
        lines.append(f"max_open_battles = {max_open}")
    for name, token, role in raters:
        lines += ["[[raters]]", f'name = "{name}"', f'token = "{token}"', f'role = "{role}"']
    return "\n".join(lines) + "\n"


def write_study(directory: Path, **kw: object) -> Path:
    p = directory / "study.toml"
    p.write_text(study_text(directory, **kw), encoding="utf-8")  # type: ignore[arg-type]
    return p


def fake_runs(
    models: Sequence[str] = BUNDLED,
    prompts: Sequence[dict[str, str]] = PROMPTS,
    *,
    per: int = 3,
    config: GenerationConfig = GEN,
    text: str = "Answer {i} to: {prompt}",
) -> pl.DataFrame:
    """Stored-run rows as the Runner writes them (the pool's input), with neutral text."""
    rows = []
    for p in prompts:
        for m in models:
            for i in range(per):
                rows.append(
                    {
                        "run_id": "fake",
                        "row_id": uuid.uuid4().hex,
                        "created_at": datetime.now(UTC),
                        "prompt_id": p["id"],
                        "prompt": p["prompt"],
                        "category": p["category"],
                        "language": p["language"],
                        "model": m,
                        "temperature": config.temperature,
                        "top_p": config.top_p,
                        "top_k": config.top_k,
                        "max_tokens": config.max_tokens,
                        "response": text.format(i=i, prompt=p["prompt"]),
                        "finish_reason": "length",
                    }
                )
    return rows_to_frame(rows)


@pytest.fixture(scope="session")
def real_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RunStore root seeded by a real run of both bundled models over the test prompts,
    with the sampling settings of ``study_text`` (top_p and top_k left to each model's
    default, as the study leaves them), so the study pools every row."""
    need_models()
    from workbench.runner import Runner

    root = tmp_path_factory.mktemp("pool")
    prompts = [Prompt(p["prompt"], p["id"], p["category"], p["language"]) for p in PROMPTS]
    config = replace(GEN, top_p=None, top_k=None)
    with Runner(list(BUNDLED), config, store=RunStore(root)) as runner:
        frame = runner.run(prompts)
    assert frame["error"].null_count() == frame.height, frame["error"].to_list()
    return root


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on port {port}")


def workbench_exe() -> list[str]:
    exe = Path(sys.executable).with_name("workbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "workbench.cli"]


@pytest.fixture()
def launched(tmp_path: Path) -> Iterator[list[object]]:
    """Apps launched in-process by a test; closed afterwards."""
    apps: list[object] = []
    yield apps
    for app in apps:
        app.close()  # type: ignore[attr-defined]
        app.arena.close()  # type: ignore[attr-defined]


def api_call(
    base: str,
    name: str,
    *args: object,
    headers: dict[str, str] | None = None,
    timeout: float = 300,
) -> tuple[str, object]:
    """One call of a named endpoint through Gradio's REST API, as any HTTP client makes
    it: ("complete", the result) or ("error", the message). The body is sent as ASCII
    JSON, so text that is not valid Unicode (a lone surrogate) reaches the server."""
    import httpx

    body = json.dumps({"data": list(args)}).encode()
    hdrs = {"content-type": "application/json", **(headers or {})}
    with httpx.Client(base_url=base, timeout=timeout) as http:
        r = http.post(f"/gradio_api/call/{name}", content=body, headers=hdrs)
        r.raise_for_status()
        event_id = r.json()["event_id"]
        event = ""
        with http.stream("GET", f"/gradio_api/call/{name}/{event_id}", headers=hdrs) as s:
            for line in s.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    data = json.loads(line[5:])
                    return event, (data[0] if event == "complete" and data else data)
    raise AssertionError(f"no result from {name}")


PG_PASSWORD_ENV = "WB_TEST_VOTES_PASSWORD"
"""The environment variable the PostgreSQL test studies name for the password."""


@pytest.fixture(scope="session")
def postgres() -> Iterator[TempPostgres]:
    """A real PostgreSQL server of the test session (initdb + pg_ctl on loopback)."""
    try:
        server = TempPostgres().start()
    except PostgresMissing as e:
        pytest.skip(str(e))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def pg_url(postgres: TempPostgres, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty database on the session's server; its password in PG_PASSWORD_ENV."""
    monkeypatch.setenv(PG_PASSWORD_ENV, postgres.password)
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


def pg_study_top(url: str) -> str:
    """Study lines that put its votes on ``url`` (for ``study_text(extra_top=...)``)."""
    return f'votes_db_password_env = "{PG_PASSWORD_ENV}"\n' + f"votes_db = {json.dumps(url)}"
