"""``workbench compare``: one prompt (or a prompt set) to several models, side by side."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from workbench.backends.base import WORKBENCH_SAMPLING, GenerationConfig
from workbench.cli import CliError, add_image_tokens
from workbench.thinking import THINKING_SETTINGS

_DEFAULT = GenerationConfig()
"""The defaults of every door (this command, ``wb.compare``, the panel) are the config's."""

WALL_MARK = "*"
"""Marks a generation rate measured by the client's clock (the server reported none)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="send the same prompt to several models, side by side",
        description="Send the same prompt (or a whole conversation) to several models and "
        "show the answers side by side with their speed figures. Every response is stored "
        "under data/runs.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("-p", "--prompt", help="the prompt text")
    src.add_argument(
        "--prompts", metavar="FILE.jsonl", help="a prompt set (or a bundled set's name)"
    )
    src.add_argument(
        "--messages",
        metavar="FILE.json",
        help="a conversation: a JSON list of {role, content} (system first, then user and "
        "assistant turns ending with a user message), sent in order to each model",
    )
    p.add_argument(
        "--image",
        action="append",
        dest="images",
        default=[],
        metavar="PATH",
        help="an image (PNG, JPEG or WebP) sent with the prompt (repeatable; with "
        "--prompts, added to every prompt); checked before any model runs",
    )
    add_image_tokens(p, "for local vision models with a budget; a server sets its own at start")
    p.add_argument(
        "-m",
        "--model",
        action="append",
        dest="models",
        metavar="MODEL",
        help="registry name, .gguf path or http://HOST:PORT/v1#MODEL (repeatable; "
        "default: the bundled models)",
    )
    # Flags named after a GenerationConfig field use it as dest, so the config is built
    # from them and an error naming the field is shown with the flag (see _flag_names).
    p.add_argument("-s", "--system", dest="system_prompt", help="system prompt")
    p.add_argument(
        "--thinking",
        choices=THINKING_SETTINGS,
        default="default",
        help="thinking mode of models that have one: on, off, or the model's default "
        "(default); the thinking is stored apart from the answer either way",
    )
    p.add_argument(
        "--max-tokens",
        dest="max_tokens",
        type=int,
        default=_DEFAULT.max_tokens,
        help=f"most tokens per answer (default {_DEFAULT.max_tokens})",
    )
    model_default = "default: the model's recommended value, from its GGUF's general.sampling"
    p.add_argument(
        "--temperature",
        type=float,
        default=_DEFAULT.temperature,
        help=f"sampling temperature; 0 = greedy ({model_default}.temp, else "
        f"{WORKBENCH_SAMPLING['temperature']})",
    )
    p.add_argument(
        "--top-p",
        dest="top_p",
        type=float,
        default=_DEFAULT.top_p,
        help=f"nucleus sampling mass ({model_default}.top_p, else {WORKBENCH_SAMPLING['top_p']})",
    )
    p.add_argument(
        "--top-k",
        dest="top_k",
        type=int,
        default=_DEFAULT.top_k,
        help=f"sample among the k likeliest tokens ({model_default}.top_k, else "
        f"{WORKBENCH_SAMPLING['top_k']})",
    )
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")
    p.add_argument("--reps", type=int, default=1, help="repetitions per prompt and model")
    p.add_argument(
        "--ctx",
        dest="n_ctx",
        type=int,
        default=_DEFAULT.n_ctx,
        help=f"context length to allocate (default {_DEFAULT.n_ctx}, at most "
        "each model's trained length)",
    )
    p.add_argument(
        "--threads",
        dest="n_threads",
        type=int,
        default=None,
        help="CPU threads (default: physical cores)",
    )
    p.add_argument("--no-store", action="store_true", help="do not append rows to data/runs")
    p.add_argument("--json", action="store_true", help="print the result rows as JSON")
    config_fields = {f.name for f in fields(GenerationConfig)}
    flags = {
        a.dest: a.option_strings[-1]
        for a in p._actions
        if a.dest in config_fields and a.option_strings
    }
    p.set_defaults(func=run, config_flags=flags)


def _flag_names(flags: dict[str, str]) -> Callable[[str], str]:
    """Rewrites the config field names in a message (``raise n_ctx``) as the flags the
    user types (``raise --ctx``); only names with an underscore, never plain words."""
    names = {k: v for k, v in flags.items() if "_" in k}
    if not names:
        return lambda s: s
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    return lambda s: pattern.sub(lambda m: names[m.group(1)], s)


def _cell(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _tg_cell(r: Mapping[str, Any]) -> str:
    if r.get("gen_tps") is not None:
        return format(r["gen_tps"], ".1f")
    if r.get("gen_tps_wall") is not None:
        return format(r["gen_tps_wall"], ".1f") + WALL_MARK
    return "-"


def prompt_label(r: Mapping[str, Any], width: int = 24) -> str:
    """A short name for a row's prompt: its id in a prompt set, else its opening words;
    the repetition when there are several."""
    label = str(r["prompt_id"]) if r.get("prompt_set") else " ".join(str(r["prompt"]).split())
    if len(label) > width:
        label = label[: width - 1].rstrip() + "…"
    return label


def metrics_table(rows: Sequence[Mapping[str, Any]], width: int | None = None) -> str:
    """A plain-text table of the speed figures, one line per response (long model names
    wrap inside their column instead of being cut)."""
    width = width or shutil.get_terminal_size((120, 40)).columns
    reps = any(r.get("rep") for r in rows)
    labels = [prompt_label(r) + (f" #{r['rep'] + 1}" if reps else "") for r in rows]
    pw = max([len("prompt"), *map(len, labels)])
    fixed = f" {'ttft s':>7} {'ttfa s':>7} {'pp t/s':>8} {'tg t/s':>8} {'tokens':>6} {'finish':>11}"
    longest = max([len("model"), *(len(r["model"]) for r in rows)])
    mw = max(16, min(longest, width - len(fixed) - pw - 2))
    head = f"{'model':<{mw}}  {'prompt':<{pw}}{fixed}"
    lines = [head, "-" * len(head)]
    for r, label in zip(rows, labels, strict=True):
        name = textwrap.wrap(r["model"], mw, break_on_hyphens=False) or [""]
        lines.append(
            f"{name[0]:<{mw}}  {label:<{pw}} {_cell(r['ttft_s'], '.3f'):>7} "
            f"{_cell(r.get('ttfa_s'), '.3f'):>7} "
            f"{_cell(r['prompt_tps'], '.1f'):>8} {_tg_cell(r):>8} "
            f"{_cell(r['completion_tokens'], 'd'):>6} {r['finish_reason']:>11}"
        )
        lines.extend(f"{part:<{mw}}".rstrip() for part in name[1:])
    lines.append(
        "ttft: submit to the first token of any kind; ttfa: to the first token of the answer "
        "(after any thinking)"
    )
    if any(_tg_cell(r).endswith(WALL_MARK) for r in rows):
        lines.append(
            f"{WALL_MARK} tokens/s of wall time as the client saw it: the server reported no "
            "counters of its own"
        )
    return "\n".join(lines)


def side_by_side(rows: Sequence[Mapping[str, Any]], width: int | None = None) -> str:
    """Answers in columns, one per model."""
    width = width or shutil.get_terminal_size((120, 40)).columns
    n = max(len(rows), 1)
    col = max(20, (width - 3 * (n - 1)) // n)
    columns = []
    for r in rows:
        body = r["response"] or ""
        if r["error"]:
            body = f"[error] {r['error']}"
        name = textwrap.wrap(r["model"], col, break_on_hyphens=False) or [""]
        wrapped: list[str] = [*name, "=" * min(col, max(map(len, name)))]
        if r.get("prompt_mode") == "completion":
            wrapped.append("(base model: text continued)")
        if r.get("reasoning"):
            count = r.get("reasoning_tokens")
            wrapped.append(
                f"[thinking: {count} tokens, not shown]" if count else "[thinking, not shown]"
            )
        for para in body.splitlines() or [""]:
            wrapped.extend(textwrap.wrap(para, col) or [""])
        columns.append(wrapped)
    height = max(len(c) for c in columns) if columns else 0
    out = []
    for i in range(height):
        out.append(" | ".join(f"{(c[i] if i < len(c) else ''):<{col}}" for c in columns).rstrip())
    return "\n".join(out)


def _summary(row: Mapping[str, Any]) -> str:
    tokens = row["completion_tokens"]
    secs = row["total_s"]
    what = f"{tokens} tokens" if tokens is not None else "no token count"
    if secs is not None:
        what += f" in {secs:.1f} s"
    return f"{what} ({row['finish_reason']})"


def run(args: argparse.Namespace) -> int:
    from workbench.backends.base import Prompt
    from workbench.chat import load_messages
    from workbench.images import load_images
    from workbench.models.registry import default_models, resolve
    from workbench.prompts import load_prompts
    from workbench.runner import (
        ResponseFinished,
        ResponseStarted,
        Runner,
        TokenChunk,
        check_models,
        check_prompts,
    )
    from workbench.store import RunStore

    if args.reps < 1 or args.max_tokens < 1:
        raise CliError("--reps and --max-tokens must be at least 1")
    if args.n_ctx < 1:
        raise CliError("--ctx must be at least 1")
    flagged = _flag_names(args.config_flags)
    conversation = load_messages(args.messages) if args.messages else None
    if conversation is not None:
        if not conversation.pending:
            raise CliError(f"{args.messages}: the conversation must end with a user message")
        if args.reps != 1:
            raise CliError("--reps: a conversation is sent once to each model")
        prompts = []
    elif args.prompts:
        prompts = check_prompts(load_prompts(args.prompts))
    else:
        prompts = check_prompts([Prompt(args.prompt)])
    if args.images:
        if conversation is not None:
            raise CliError("--image goes with -p or --prompts, not with --messages")
        images = load_images(args.images)  # every image checked before any model runs
        prompts = [replace(p, images=(*p.images, *images)) for p in prompts]
    refs = [resolve(m) for m in args.models] if args.models else default_models()
    check = check_models(refs)
    for line in check.skipped:
        print(f"workbench compare: {line} (skipped)", file=sys.stderr)
    for line in check.warnings:
        print(f"workbench compare: warning: {line}", file=sys.stderr)
    if not check.ready:
        return 2
    settings = {k: getattr(args, k) for k in args.config_flags}
    settings["thinking"] = None if settings["thinking"] == "default" else settings["thinking"]
    config = GenerationConfig(**settings)
    store = None if args.no_store else RunStore()
    total = (len(prompts) * args.reps if conversation is None else 1) * len(check.ready)
    tty = sys.stderr.isatty()
    # On a terminal one answer per model streams under its name (the table follows);
    # more than that shows a progress bar. Elsewhere (a log, a pipe) each finished
    # response is one line, so a long run is never silent.
    live = tty and not args.json and total == len(check.ready)
    bar = None
    if tty and not live:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="response", file=sys.stderr)

    def note(line: str) -> None:
        if bar is not None:
            bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    rows: list[Mapping[str, Any]] = []
    with Runner(check.ready, config, store=store) as runner:
        events = (
            runner.stream(prompts, reps=args.reps)
            if conversation is None
            else runner.conversation(conversation).stream()
        )
        for ev in events:
            if isinstance(ev, ResponseStarted) and live:
                sys.stderr.write(f"── {ev.model} ──\n")
                sys.stderr.flush()
            elif isinstance(ev, TokenChunk) and live:
                # Thinking streams dimmed, so the answer stands out as it arrives.
                sys.stderr.write(f"\x1b[2m{ev.text}\x1b[0m" if ev.reasoning else ev.text)
                sys.stderr.flush()
            elif isinstance(ev, ResponseFinished):
                rows.append(ev.row)
                error = flagged(ev.error) if ev.error else None
                if live:
                    sys.stderr.write("\n")
                if tty:
                    if error:
                        note(f"workbench compare: {error}")
                    if bar is not None:
                        bar.update(1)
                    continue
                what = error.removeprefix(f"{ev.model}: ") if error else _summary(ev.row)
                label = prompt_label(ev.row) + (f" #{ev.rep + 1}" if args.reps > 1 else "")
                note(f"workbench compare: [{len(rows)}/{total}] {ev.model}, {label}: {what}")
    if bar is not None:
        bar.close()
    if args.json:
        print(json.dumps(rows, default=str, ensure_ascii=False))
        return 0
    shown = [{**r, "error": flagged(r["error"]) if r["error"] else None} for r in rows]
    by_prompt: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in shown:
        by_prompt.setdefault((r["prompt_id"], r["rep"]), []).append(r)
    for (pid, rep), group in by_prompt.items():
        title = " ".join(group[0]["prompt"].split())
        name = f"Prompt {pid}" if group[0]["prompt_set"] else "Prompt"
        if group[0]["conversation_id"]:
            name = f"Turn {group[0]['turn']} of {args.messages}"
        title = title[:100]
        sizes = group[0].get("image_size")
        if sizes:  # e.g. "[+ 2 images: 640x480, 32x32]"
            n = sizes.count(",") + 1
            title += f" [+ {n} image{'s' if n > 1 else ''}: {sizes.replace(',', ', ')}]"
        print(f"\n{name}" + (f" (rep {rep + 1})" if args.reps > 1 else "") + f": {title}")
        print(side_by_side(group))
    print()
    print(metrics_table(shown))
    if store is not None:
        print(f"\n{len(rows)} row(s) stored under {store.runs_dir}", file=sys.stderr)
    return 1 if rows and all(r["error"] for r in rows) else 0
