"""``workbench models [--json]``: every model workbench can find, with its GGUF header facts."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the models workbench finds (bundled, directories, HF cache, Ollama, "
        "LM Studio, workbench.toml)",
        description=(
            "List every model workbench can find: the bundled ones, $WORKBENCH_MODELS and "
            "workbench.toml directories and models, the Hugging Face hub cache, Ollama's "
            "and LM Studio's stores, and workbench.toml endpoints. Header facts come from "
            "the GGUF file; a file whose header cannot be read is listed with its error."
        ),
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def model_rows() -> list[dict[str, Any]]:
    """One dict per model: the ``models --json`` objects."""
    from workbench.chat import prompt_mode
    from workbench.gguf import GGUFError
    from workbench.models.registry import list_models

    rows = []
    for ref in list_models():
        row: dict[str, Any] = {
            "name": ref.name,
            "path": ref.path,
            "arch": None,
            "params": None,
            "quant": None,
            "n_ctx_train": None,
            "size_bytes": None,
            "chat_template": None,
            "prompt_mode": "chat" if ref.is_endpoint else None,
            "source": ref.source,
            "served_model": ref.served_model,
            "mmproj": ref.mmproj,
            "error": None,
        }
        if not ref.is_endpoint:
            try:
                info = ref.info()
            except GGUFError as e:
                row["error"] = str(e)
            except Exception as e:  # a listing must never crash on one bad file
                row["error"] = f"{type(e).__name__}: {e}"
            else:
                row.update(
                    arch=info.arch,
                    params=info.params,
                    quant=info.quant,
                    n_ctx_train=info.n_ctx_train,
                    size_bytes=info.size_bytes,
                    chat_template=info.chat_template is not None,
                    prompt_mode=prompt_mode(info.chat_template),
                )
        rows.append(row)
    return rows


def _human(n: float | None, units: tuple[str, ...], step: float) -> str:
    if n is None:
        return "-"
    for u in units[:-1]:
        if abs(n) < step:
            return f"{n:.0f}{u}" if u == units[0] else f"{n:.1f}{u}"
        n /= step
    return f"{n:.1f}{units[-1]}"


CHAT_LEGEND = (
    "CHAT: yes = the GGUF carries a chat template: prompts and conversations go through "
    'it (rows say prompt_mode "chat"); base = no template, a pretrained base model: '
    'the prompt is continued as plain text (prompt_mode "completion"); served = the '
    "server applies its own template; - = unknown (the header could not be read)."
)
"""What the table's CHAT column means, printed under it."""


def _chat_cell(r: dict[str, Any]) -> str:
    if r["source"] == "endpoint":
        return "served"
    if r["chat_template"] is None:
        return "-"
    return "yes" if r["chat_template"] else "base"


def format_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A fixed-width table with a header line; the last column is not padded."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[:-1])]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1]
        for line in (header, *rows)
    )


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table: one line per model, the path (or error) last, then what the
    CHAT column means."""
    cols = ("NAME", "SOURCE", "ARCH", "PARAMS", "QUANT", "CTX", "SIZE", "CHAT", "PATH / ERROR")
    lines = []
    for r in rows:
        chat = _chat_cell(r)
        tail = f"error: {r['error']}" if r["error"] else r["path"]
        if r["served_model"] and r["source"] == "endpoint":
            tail = f"{r['path']}#{r['served_model']}"
        if r.get("mmproj"):  # a vision model: its projector beside it
            tail += f" + {PurePath(r['mmproj']).name}"
        lines.append((
            r["name"], r["source"], r["arch"] or "-",
            _human(r["params"], ("", "K", "M", "B", "T"), 1000.0), r["quant"] or "-",
            str(r["n_ctx_train"]) if r["n_ctx_train"] else "-",
            _human(r["size_bytes"], ("B", "KiB", "MiB", "GiB", "TiB"), 1024.0), chat, tail,
        ))  # fmt: skip
    return "\n".join([format_columns(cols, lines), "", *textwrap.wrap(CHAT_LEGEND, 100)])


def run(args: argparse.Namespace) -> int:
    from workbench.config import ConfigError, load_config

    try:
        load_config()
    except ConfigError as e:  # still list the rest; say why the config's models are missing
        print(f"workbench models: {e}", file=sys.stderr)
    rows = model_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no models found (run `make models`, or `workbench pull NAME`)", file=sys.stderr)
        return 0
    print(format_table(rows))
    return 0
