"""``workbench bench``: llama-bench-grade prompt and generation speed, with sweeps."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.cli import CliError, add_image_tokens

if TYPE_CHECKING:
    from workbench.schemas import BenchRow

T = TypeVar("T")

_FA = {"1": True, "on": True, "true": True, "0": False, "off": False, "false": False}


def _flash(value: str) -> bool | None:
    v = value.strip().lower()
    if v == "auto":
        return None
    if v not in _FA:
        raise ValueError(value)
    return _FA[v]


def _list(conv: Callable[[str], T], what: str) -> Callable[[str], list[T]]:
    def parse(text: str) -> list[T]:
        try:
            values = [conv(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what}: expected a comma list, got {text!r}"
            ) from None
        if not values:
            raise argparse.ArgumentTypeError(f"{what}: give at least one value")
        return values

    return parse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="prompt-processing and generation speed (llama-bench method)",
        description="Measure prompt processing (pp) and generation (tg) tokens/s the way "
        "llama-bench does: one warm-up, then R repetitions on a cleared cache, mean +- sample "
        "sd of the per-repetition rates. Comma lists sweep settings (every combination "
        "runs). Each model runs in its own process; results are stored under data/bench.",
    )
    p.add_argument(
        "-m",
        "--model",
        action="extend",
        nargs="+",
        dest="models",
        metavar="MODEL",
        help="registry name or .gguf path (repeatable; default: the bundled models)",
    )
    p.add_argument("-p", "--n-prompt", type=int, default=512, help="prompt tokens (0: no pp)")
    p.add_argument("-n", "--n-gen", type=int, default=128, help="generated tokens (0: no tg)")
    p.add_argument(
        "-d",
        "--n-depth",
        type=_list(int, "-d"),
        default=[0],
        metavar="0,4096",
        help="context depth(s): tokens in the cache before the timed part",
    )
    p.add_argument("-r", "--repetitions", type=int, default=5, help="timed repetitions")
    p.add_argument(
        "-t",
        "--threads",
        type=_list(int, "-t"),
        default=None,
        metavar="N,...",
        help="CPU threads (default: physical cores)",
    )
    p.add_argument("-b", "--batch-size", type=_list(int, "-b"), default=[2048], metavar="N,...")
    p.add_argument("-ub", "--ubatch-size", type=_list(int, "-ub"), default=[512], metavar="N,...")
    p.add_argument(
        "-fa", "--flash-attn", type=_list(_flash, "-fa"), default=[None], metavar="0|1|auto,..."
    )
    p.add_argument(
        "-ctk", "--cache-type-k", type=_list(str, "-ctk"), default=["f16"], metavar="TYPE,..."
    )
    p.add_argument(
        "-ctv", "--cache-type-v", type=_list(str, "-ctv"), default=["f16"], metavar="TYPE,..."
    )
    p.add_argument(
        "-ngl",
        "--n-gpu-layers",
        type=_list(int, "-ngl"),
        default=[-1],
        metavar="N,...",
        help="layers on the GPU (-1: all)",
    )
    p.add_argument(
        "--interleave",
        action="store_true",
        help="load the models together and let their repetitions take turns, then print "
        "each model's speed relative to the first one, repetition by repetition, with a "
        "95%% interval: fair comparisons on a machine whose speed drifts (laptop, shared VM)",
    )
    p.add_argument(
        "--images",
        type=int,
        default=0,
        metavar="N",
        help="also an image test (img): the projector encodes N images per repetition; the "
        "rate is images/s (models need a projector beside them)",
    )
    add_image_tokens(p, "in the image test")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up")
    p.add_argument("--no-store", action="store_true", help="do not append rows to data/bench")
    p.add_argument("--json", action="store_true", help="print the result rows as JSON")
    p.set_defaults(func=run)


def _fa_text(v: bool | None) -> str:
    return "auto" if v is None else str(int(v))


def _test_name(r: Mapping[str, Any]) -> str:
    if r["test"] is None:
        return "-"
    if r["test"] == "img":  # images per repetition, and the tokens each took
        tokens = f" @ {r['image_tokens']} tok" if r.get("image_tokens") else ""
        return f"img{r['n_images']}{tokens}"
    n = r["n_prompt"] if r["test"] == "pp" else r["n_gen"]
    return f"{r['test']}{n}" + (f" @ d{r['depth']}" if r["depth"] else "")


def table(rows: list[dict[str, Any]]) -> str:
    """llama-bench's markdown table: settings, test, t/s as mean +- sd (images/s for an
    img test)."""
    head = ["model", "ngl", "threads", "n_batch", "fa", "type_k", "test", "t/s"]
    body = []
    for r in rows:
        if r["error"] and r["tps_mean"] is None:
            tps = f"error: {r['error']}"
        else:
            tps = f"{r['tps_mean']:.2f} ± {r['tps_sd']:.2f}"
        body.append(
            [
                r["model"] + (" (twin)" if r.get("twin") else ""),
                "-" if r["n_gpu_layers"] is None else str(r["n_gpu_layers"]),
                "-" if r["n_threads"] is None else str(r["n_threads"]),
                "-" if r["n_batch"] is None else str(r["n_batch"]),
                "-" if r["test"] is None else _fa_text(r["flash_attn"]),
                r["type_k"] or "-",
                _test_name(r),
                tps,
            ]
        )
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)
    ]
    right = {1, 2, 3, 7}

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(out) + " |"

    sep = (
        "| "
        + " | ".join(("-" * (w - 1) + ":") if i in right else "-" * w for i, w in enumerate(widths))
        + " |"
    )
    return "\n".join([line(head), sep, *(line(b) for b in body)])


def _ratio_lines(frame: Any, baseline: str) -> str:
    """The paired comparison of an interleaved run, one line per model and test."""
    from workbench.speed import BenchError, speed_ratios

    try:
        ratios = speed_ratios(frame, baseline)
    except BenchError as e:
        return f"\nno paired comparison: {e}"
    lines = [f"\nspeed relative to {baseline}, repetition by repetition (median [95% interval]):"]
    for r in ratios.iter_rows(named=True):
        interval = "" if math.isnan(r["low"]) else f" [{r['low']:.3f}, {r['high']:.3f}]"
        lines.append(f"  {r['model']} {_test_name(r)}: {r['ratio']:.3f}{interval}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from workbench.models.registry import default_models, resolve
    from workbench.speed import BenchSettings, bench, bench_cases

    if args.repetitions < 1:
        raise CliError("-r must be at least 1")
    sweep = BenchSettings(
        n_threads=args.threads or [None],
        n_batch=args.batch_size,
        n_ubatch=args.ubatch_size,
        flash_attn=args.flash_attn,
        type_k=args.cache_type_k,
        type_v=args.cache_type_v,
        n_gpu_layers=args.n_gpu_layers,
    )
    cases = bench_cases(
        n_prompt=args.n_prompt, n_gen=args.n_gen, depths=args.n_depth, sweep=sweep,
        n_images=args.images, image_tokens=args.image_tokens,
    )  # fmt: skip
    refs = [resolve(m) for m in args.models] if args.models else default_models()

    total = len(cases) * len(refs)
    done = 0

    def progress(row: BenchRow) -> None:
        nonlocal done
        done += 1
        model = row["model"] + (" (twin)" if row.get("twin") else "")
        if row["error"]:
            what = f"{model} {_test_name(row)}: error: {row['error']}"
        else:
            unit = "images/s" if row["test"] == "img" else "t/s"
            what = f"{model} {_test_name(row)}: {row['tps_mean']:.2f} ± {row['tps_sd']:.2f} {unit}"
        print(f"[{done}/{total}] {what}", file=sys.stderr, flush=True)

    frame = bench(
        refs,
        n_prompt=args.n_prompt,
        n_gen=args.n_gen,
        depths=args.n_depth,
        reps=args.repetitions,
        sweep=sweep,
        store=not args.no_store,
        warmup=not args.no_warmup,
        on_row=progress,
        interleave=args.interleave,
        n_images=args.images,
        image_tokens=args.image_tokens,
    )
    rows = frame.to_dicts()
    if args.json:
        print(json.dumps(rows, default=str, ensure_ascii=False))
    else:
        print(table(rows))
        paired = [r["model"] for r in rows if r["interleaved"] and not r["error"]]
        if paired:
            print(_ratio_lines(frame, paired[0]))
        if not args.no_store:
            from workbench.store import data_dir

            print(f"\n{len(rows)} row(s) stored under {data_dir() / 'bench'}", file=sys.stderr)
    ok = [r for r in rows if not r["error"]]
    return 1 if rows and not ok else 0
