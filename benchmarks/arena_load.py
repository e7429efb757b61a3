"""Arena capacity: N concurrent raters doing battle + vote cycles, against Gradio's ceiling.

The servers run in their own processes: the arena on a study of the two bundled models
with a pool of pre-generated answers (so no generation is measured), once per votes
engine (SQLite, and PostgreSQL on a throwaway server started here) and number of arena
processes (``--processes``), and a bare Gradio app with two trivial endpoints of the same
shape (``new_battle`` returns a constant, ``vote`` echoes). Raters are asyncio HTTP clients
calling both endpoints through Gradio's REST API (``/gradio_api/call/NAME``); with several
arena processes rater i starts its battles on process i and votes on the next one. For
each N every server gets the same load in the same run, and the script prints votes/s,
p50/p95 of each call, and the arena / bare ratio of votes/s. Target (issue 15): the ratio
at least 0.5 at 50 raters, vote p95 under 1 s on a quiet machine.

    python benchmarks/arena_load.py                      # 10, 50, 200 raters, 5 cycles
    python benchmarks/arena_load.py --raters 50 --cycles 10 --processes 1 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from workbench.testing.postgres import PostgresMissing, TempPostgres

PROMPTS = 20
ANSWERS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/gradio_api/info", timeout=5).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"nothing answers on port {port}")


# --------------------------------------------------------------------------- servers


PASSWORD_ENV = "WB_BENCH_VOTES_PASSWORD"


def _study(directory: Path, raters: int, votes_db: str = "votes.sqlite") -> Path:
    prompts = directory / "prompts.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "category": "c", "language": "en", "prompt": f"Q{i}?"})
            + "\n"
            for i in range(PROMPTS)
        )
    )
    lines = [
        'name = "load"',
        'models = ["gemma-3-270m", "smollm2-135m-instruct"]',
        'prompts = ["prompts.jsonl"]',
        f"votes_db = {json.dumps(votes_db)}",
        *([f'votes_db_password_env = "{PASSWORD_ENV}"'] if "://" in votes_db else []),
        "[generation]",
        "max_tokens = 32",
        "temperature = 0.7",
        "n_ctx = 512",
        "[pool]",
        "only = true",
        f"runs_root = {json.dumps(str(directory))}",
        "[limits]",
        "max_open_battles = 2",
    ]
    for i in range(raters):
        lines += ["[[raters]]", f'name = "r{i}"', f'token = "load-token-{i:04d}"']
    path = directory / f"study-{uuid.uuid4().hex[:8]}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _serve_arena(study_path: str, port: int) -> None:
    from workbench.arena import Arena, build_app, load_study
    from workbench.backends.base import WORKBENCH_SAMPLING
    from workbench.store import rows_to_frame

    study = load_study(study_path)
    cfg = study.generation
    rows = [
        {
            "run_id": "load",
            "row_id": f"{p.id}-{m}-{k}",  # the same ids in every arena process
            "created_at": datetime.now(UTC),
            "prompt_id": p.id,
            "prompt": p.text,
            "category": p.category,
            "language": p.language,
            "model": m,
            # settings the study leaves to the model: workbench's values, as a run
            # that names no model defaults records them
            **{
                k: getattr(cfg, k) if getattr(cfg, k) is not None else WORKBENCH_SAMPLING[k]
                for k in ("temperature", "top_p", "top_k")
            },
            "max_tokens": cfg.max_tokens,
            "response": f"Answer {k} to {p.text}: " + "some words " * 20,
            "finish_reason": "length",
        }
        for p in study.prompts
        for m in study.model_names
        for k in range(ANSWERS)
    ]
    app = build_app(study, arena=Arena(study, runs=rows_to_frame(rows), seed=0))
    app.launch(server_port=port, quiet=True)


def _serve_bare(port: int) -> None:
    import gradio as gr

    def new_battle(token: str, prompt: str = "") -> dict:
        return {"battle_id": uuid.uuid4().hex, "prompt": "Q?", "answer_a": "a", "answer_b": "b"}

    def vote(token: str, battle_id: str, choice: str, reason: str = "") -> dict:
        return {"status": "recorded", "battle_id": battle_id, "choice": choice}

    with gr.Blocks(analytics_enabled=False) as app:
        gr.Markdown("bare")
        gr.api(new_battle, api_name="new_battle", concurrency_limit=None)
        gr.api(vote, api_name="vote", concurrency_limit=None)
    app.launch(
        server_port=port, quiet=True, ssr_mode=False, max_threads=64, enable_monitoring=False
    )


# --------------------------------------------------------------------------- load


async def _call(http: httpx.AsyncClient, name: str, *args: object) -> object:
    r = await http.post(f"/gradio_api/call/{name}", json={"data": list(args)})
    r.raise_for_status()
    event_id = r.json()["event_id"]
    event = ""
    async with http.stream("GET", f"/gradio_api/call/{name}/{event_id}") as s:
        async for line in s.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = json.loads(line[5:])
                if event == "error":
                    raise RuntimeError(f"{name}: {data}")
                return data[0]
    raise RuntimeError(f"{name}: no result")


async def _load(ports: list[int], raters: int, cycles: int) -> dict[str, object]:
    times: dict[str, list[float]] = {"new_battle": [], "vote": []}
    errors: list[str] = []
    limits = httpx.Limits(max_connections=2 * raters, max_keepalive_connections=2 * raters)

    async def rater(i: int, https: list[httpx.AsyncClient]) -> None:
        token = f"load-token-{i:04d}"
        start, vote = https[i % len(https)], https[(i + 1) % len(https)]
        for _ in range(cycles):
            try:
                t = time.perf_counter()
                battle = await _call(start, "new_battle", token, "")
                times["new_battle"].append(time.perf_counter() - t)
                t = time.perf_counter()
                await _call(vote, "vote", token, battle["battle_id"], "A", "")  # type: ignore[index]
                times["vote"].append(time.perf_counter() - t)
            except (httpx.HTTPError, RuntimeError) as e:
                errors.append(str(e)[:120])

    https = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600, limits=limits)
        for port in ports
    ]
    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(rater(i, https) for i in range(raters)))
        wall = time.perf_counter() - t0
    finally:
        for http in https:
            await http.aclose()
    q = {k: statistics.quantiles(v, n=20) if len(v) > 1 else [0.0] * 19 for k, v in times.items()}
    return {
        "votes_per_s": len(times["vote"]) / wall,
        "battle_p50": statistics.median(times["new_battle"] or [0.0]),
        "battle_p95": q["new_battle"][18],
        "vote_p50": statistics.median(times["vote"] or [0.0]),
        "vote_p95": q["vote"][18],
        "votes": len(times["vote"]),
        "errors": errors[:3],
        "n_errors": len(errors),
    }


def _spawn(kind: str, port: int, tmp: str, study: Path | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    if study is not None:
        cmd += ["--study", str(study)]
    env = {**os.environ, "WORKBENCH_DATA": tmp}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raters", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--cycles", type=int, default=5, help="battle + vote cycles per rater")
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        default=[1, 2],
        help="arena processes serving one study (default: 1 and 2)",
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=["sqlite", "postgresql"],
        default=["sqlite", "postgresql"],
        help="votes stores to measure (default: both)",
    )
    parser.add_argument("--serve", choices=["arena", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--study", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "arena":
        return _serve_arena(args.study, args.port)
    if args.serve == "bare":
        return _serve_bare(args.port)

    print(
        f"arena load: {args.cycles} battle+vote cycles per rater, pooled answers; "
        f"{os.cpu_count()} CPUs"
    )
    header = f"{'raters':>6} {'server':>16} {'votes/s':>8} {'battle p50/p95 s':>17} "
    print(header + f"{'vote p50/p95 s':>15} {'errors':>6}")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        engines = [e for e in args.engines if e == "sqlite"]
        pg: TempPostgres | None = None
        if "postgresql" in args.engines:
            try:
                pg = stack.enter_context(TempPostgres())
                os.environ[PASSWORD_ENV] = pg.password
                engines.append("postgresql")
            except (PostgresMissing, RuntimeError) as e:
                print(f"(no PostgreSQL rows: {e})")
        bare_port = _free_port()
        bare = _spawn("bare", bare_port, tmp)
        stack.callback(_stop, [bare])
        _wait(bare_port, bare)
        ratios = []
        for n in args.raters:
            res = {"bare": asyncio.run(_load([bare_port], n, args.cycles))}
            _print(n, "bare", res["bare"])
            for engine in engines:
                for processes in args.processes:
                    # a fresh store for every run: earlier votes do not slow the next
                    name = f"{engine} x{processes}"
                    if pg is not None and engine == "postgresql":
                        db = pg.create_database(f"bench_{uuid.uuid4().hex[:10]}")
                    else:
                        db = str(Path(tmp) / f"votes-{uuid.uuid4().hex[:8]}.sqlite")
                    study = _study(Path(tmp), max(args.raters), db)
                    ports = [_free_port() for _ in range(processes)]
                    procs = [_spawn("arena", p, tmp, study) for p in ports]
                    try:
                        for port, proc in zip(ports, procs, strict=True):
                            _wait(port, proc)
                        res[name] = asyncio.run(_load(ports, n, args.cycles))
                    finally:
                        _stop(procs)
                    _print(n, name, res[name])
                    ratio = float(res[name]["votes_per_s"]) / float(res["bare"]["votes_per_s"])  # type: ignore[arg-type]
                    ratios.append((n, name, ratio))
        for n, name, ratio in ratios:
            print(f"ratio arena ({name}) / bare votes/s at {n} raters: {ratio:.2f}")


def _print(n: int, name: str, r: dict[str, Any]) -> None:
    print(
        f"{n:>6} {name:>16} {r['votes_per_s']:>8.1f} "
        f"{r['battle_p50']:>8.3f}/{r['battle_p95']:<8.3f} "
        f"{r['vote_p50']:>7.3f}/{r['vote_p95']:<7.3f} {r['n_errors']:>6}"
        + (f"  e.g. {r['errors'][0]}" if r["errors"] else ""),
        flush=True,
    )


if __name__ == "__main__":
    main()
