"""``workbench compare``: one prompt (or a prompt set) to several models, side by side."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from typing import Any

from workbench.cli import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="send the same prompt to several models, side by side",
        description="Send the same prompt to several models and show the answers side by "
        "side with their speed figures. Every response is stored under data/runs.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-p", "--prompt", help="the prompt text")
    src.add_argument(
        "--prompts", metavar="FILE.jsonl", help="a prompt set (or a bundled set's name)"
    )
    p.add_argument(
        "-m",
        "--model",
        action="append",
        dest="models",
        metavar="MODEL",
        help="registry name, .gguf path or http://HOST:PORT/v1#MODEL (repeatable; "
        "default: the bundled models)",
    )
    p.add_argument("-s", "--system", help="system prompt")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--reps", type=int, default=1, help="repetitions per prompt and model")
    p.add_argument("--ctx", type=int, default=4096, help="context length to allocate")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: physical cores)"
    )
    p.add_argument("--no-store", action="store_true", help="do not append rows to data/runs")
    p.add_argument("--json", action="store_true", help="print the result rows as JSON")
    p.set_defaults(func=run)


def _cell(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def metrics_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of the speed figures, one line per response."""
    head = f"{'model':<28} {'ttft s':>7} {'pp t/s':>8} {'tg t/s':>8} {'tokens':>6} {'finish':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['model'][:28]:<28} {_cell(r['ttft_s'], '.3f'):>7} "
            f"{_cell(r['prompt_tps'], '.1f'):>8} {_cell(r['gen_tps'], '.1f'):>8} "
            f"{_cell(r['completion_tokens'], 'd'):>6} {r['finish_reason']:>9}"
        )
    return "\n".join(lines)


def side_by_side(rows: list[dict[str, Any]], width: int | None = None) -> str:
    """Answers in columns, one per model."""
    width = width or shutil.get_terminal_size((120, 40)).columns
    n = max(len(rows), 1)
    col = max(20, (width - 3 * (n - 1)) // n)
    columns = []
    for r in rows:
        body = r["response"] or ""
        if r["error"]:
            body = f"[error] {r['error']}"
        wrapped: list[str] = [r["model"][:col], "=" * min(col, len(r["model"]))]
        for para in body.splitlines() or [""]:
            wrapped.extend(textwrap.wrap(para, col) or [""])
        columns.append(wrapped)
    height = max(len(c) for c in columns) if columns else 0
    out = []
    for i in range(height):
        out.append(" | ".join(f"{(c[i] if i < len(c) else ''):<{col}}" for c in columns).rstrip())
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from workbench.backends.base import GenerationConfig, Prompt
    from workbench.models.registry import default_models, resolve
    from workbench.prompts import load_prompts
    from workbench.runner import ResponseFinished, Runner, TokenChunk
    from workbench.store import RunStore

    if args.reps < 1 or args.max_tokens < 1:
        raise CliError("--reps and --max-tokens must be at least 1")
    refs = [resolve(m) for m in args.models] if args.models else default_models()
    prompts = load_prompts(args.prompts) if args.prompts else [Prompt(args.prompt)]
    config = GenerationConfig(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        seed=args.seed,
        max_tokens=args.max_tokens,
        system_prompt=args.system,
        n_ctx=args.ctx,
        n_threads=args.threads,
    )
    store = None if args.no_store else RunStore()
    total = len(prompts) * args.reps * len(refs)
    bar = None
    if args.prompts or total > len(refs):
        from tqdm import tqdm

        bar = tqdm(total=total, unit="response", file=sys.stderr, disable=None)
    rows: list[dict[str, Any]] = []
    live = not args.json and bar is None and sys.stderr.isatty()
    with Runner(refs, config, store=store) as runner:
        for ev in runner.stream(prompts, reps=args.reps):
            if isinstance(ev, TokenChunk) and live:
                sys.stderr.write(ev.text)
                sys.stderr.flush()
            elif isinstance(ev, ResponseFinished):
                rows.append(ev.row)
                if bar is not None:
                    bar.update(1)
                if ev.error:
                    print(f"workbench compare: {ev.error}", file=sys.stderr)
                elif live:
                    sys.stderr.write("\n")
    if bar is not None:
        bar.close()
    if args.json:
        print(json.dumps(rows, default=str, ensure_ascii=False))
        return 0
    by_prompt: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        by_prompt.setdefault((r["prompt_id"], r["rep"]), []).append(r)
    for (pid, rep), group in by_prompt.items():
        title = group[0]["prompt"].replace("\n", " ")
        print(f"\n### {pid}" + (f" (rep {rep + 1})" if args.reps > 1 else "") + f": {title[:100]}")
        print(side_by_side(group))
    print()
    print(metrics_table(rows))
    if store is not None:
        print(f"\n{len(rows)} row(s) stored under {store.runs_dir}", file=sys.stderr)
    return 1 if rows and all(r["error"] for r in rows) else 0
