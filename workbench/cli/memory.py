"""``workbench memory``: weights + KV cache + recurrent state per model and context."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import TYPE_CHECKING, Any

from workbench.cli import add_image_tokens

DEFAULT_CTXS = (4096, 32768, 131072)

if TYPE_CHECKING:
    from workbench.gguf import ModelInfo
    from workbench.models.registry import ModelRef


def _kv_type(name: str) -> str:
    """A KV-cache type llama.cpp accepts (checked against the one table when parsed)."""
    from workbench.gguf import UnknownKVCacheType, kv_cache_type

    try:
        kv_cache_type(name)
    except UnknownKVCacheType as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return name


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "memory",
        help="memory needed per model and context length (from the GGUF header)",
        description="Bytes for weights, KV cache and recurrent state, as llama.cpp allocates "
        "them, for each model and context length; with --budget, the largest context that fits.",
    )
    p.add_argument(
        "-m",
        "--model",
        action="append",
        dest="models",
        metavar="MODEL",
        help="registry name or .gguf path (repeatable; default: bundled models)",
    )
    p.add_argument(
        "--ctx",
        type=int,
        action="append",
        metavar="N",
        help=f"context length (repeatable; default: {', '.join(map(str, DEFAULT_CTXS))}"
        " capped at each model's trained length)",
    )
    p.add_argument(
        "--kv-type",
        default="f16",
        type=_kv_type,
        help="KV cache type for K and V: f16 (default), q8_0, q4_0, ... as llama.cpp's -ctk",
    )
    p.add_argument(
        "--swa-full",
        action="store_true",
        help="full-size sliding-window caches (llama.cpp's own default)",
    )
    p.add_argument(
        "--flash-attn",
        choices=("on", "off", "auto"),
        default="auto",
        help="flash attention; off pads the V cache (default auto, as llama.cpp)",
    )
    p.add_argument(
        "--budget",
        type=float,
        metavar="GIB",
        help="also report the largest context that fits in GIB GiB",
    )
    p.add_argument(
        "--images",
        type=int,
        default=0,
        metavar="N",
        help="for vision models (a projector beside them): plan N images in the context "
        "too (the projector's weights are always counted)",
    )
    add_image_tokens(p, "for projectors with a budget")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def _ctxs_for(n_ctx_train: int | None, asked: list[int] | None) -> list[int]:
    from workbench.models.memory import contexts_within

    return asked or contexts_within(n_ctx_train, DEFAULT_CTXS)


def _vision(ref: Any, n_images: int, budget: int | None) -> dict[str, Any]:
    """The planner's projector arguments for a vision model (none for a text one)."""
    from workbench.gguf import read_model_info
    from workbench.models.projectors import check_budget, image_tokens

    if not ref.mmproj:
        return {}
    projector = read_model_info(ref.mmproj)
    check_budget(projector, budget)
    per_image = image_tokens(projector, budget) or budget
    if n_images and per_image is None:
        raise ValueError("its projector's tokens per image vary by image: give --image-tokens")
    return {"projector": projector, "image_tokens": n_images * (per_image or 0)}


def run(args: argparse.Namespace) -> int:
    from workbench.cli import CliError
    from workbench.gguf import GGUFError
    from workbench.models import registry
    from workbench.models.memory import GIB, UnsupportedArch, format_bytes, max_context, plan

    refs = [_resolve(m) for m in args.models] if args.models else registry.default_models()
    fa = {"on": True, "off": False, "auto": None}[args.flash_attn]
    kw: dict[str, Any] = {"kv_type": args.kv_type, "swa_full": args.swa_full, "flash_attn": fa}
    if any(c <= 0 for c in args.ctx or []):
        raise CliError("--ctx must be positive")
    if args.images < 0:
        raise CliError("--images must not be negative")

    rows: list[dict[str, Any]] = []
    errors = 0
    text: list[str] = []
    for ref in refs:
        try:
            info = ref.info()
            ctxs = _ctxs_for(info.n_ctx_train, args.ctx)
            vision = _vision(ref, args.images, args.image_tokens)
            plans = [plan(info, c, **kw, **vision) for c in ctxs]
            fit = capped = None
            if args.budget is not None:
                fit = max_context(info, args.budget * GIB, **kw)
                # The search stops at the trained context: say so when that is the answer.
                capped = fit > 0 and fit == max_context(info, math.inf, **kw)
        except (GGUFError, UnsupportedArch, ValueError) as e:
            errors += 1
            print(f"workbench memory: {ref.name}: {e}", file=sys.stderr)
            continue
        for p in plans:
            row = {"model": ref.name, **{k: v for k, v in p.as_row().items() if k != "model"}}
            if args.budget is not None:
                row["budget_gib"] = args.budget
                row["over_budget"] = p.total_bytes > args.budget * GIB
                row["max_ctx"] = fit
                row["max_ctx_is_trained_cap"] = capped
            rows.append(row)
        text.append(f"{ref.name}  ({info.arch}, {info.quant}, trained ctx {info.n_ctx_train})")
        if vision:
            text.append(
                f"  + projector {format_bytes(plans[0].projector_bytes)} (in weights), "
                f"{vision['image_tokens']} image tokens in each context"
            )
        heads = ("weights", "KV cache", "state", "total")
        text.append(f"  {'ctx':>8}" + "".join(f"  {h:>11}" for h in heads))
        for p in plans:
            over = args.budget is not None and p.total_bytes > args.budget * GIB
            text.append(
                f"  {p.ctx:>8}  {format_bytes(p.weights_bytes + p.projector_bytes):>11}"
                f"  {format_bytes(p.kv_bytes):>11}"
                f"  {format_bytes(p.state_bytes):>11}  {format_bytes(p.total_bytes):>11}"
                + (f"  over {args.budget:g} GiB" if over else "")
            )
        text.append(
            f"  KV per token: {format_bytes(plans[0].kv_bytes_per_token)}"
            f" ({args.kv_type}, swa_full={'on' if args.swa_full else 'off'})"
        )
        if fit is not None:
            text.append(f"  max context in {args.budget:g} GiB: {_fit_text(fit, capped, info)}")
        text.append("")
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print("\n".join(text).rstrip())
    if errors and not rows:
        return 1
    return 0


def _resolve(spec: str) -> ModelRef:
    """Memory needs only a twin's header: a sparse all-zero twin costs no disk or time."""
    from workbench.models import registry

    if spec.startswith(("twin:", "catalog:")):
        return registry.twin_ref(spec, fill="zeros")
    return registry.resolve(spec)


def _fit_text(fit: int, capped: bool | None, info: ModelInfo) -> str:
    """The budget's answer in words: a number alone would hide that the trained context,
    not the memory, set it."""
    from workbench.models.memory import CTX_PAD

    if fit == 0:
        return f"none (not even {CTX_PAD} tokens fit beside the weights)"
    if capped:
        return f"{fit}, the trained context: the model's cap, not the memory's limit"
    return f"{fit} (trained context {info.n_ctx_train})"
