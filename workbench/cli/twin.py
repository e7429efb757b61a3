"""``workbench twin SOURCE -o FILE``: write a synthetic twin (real layout, random weights)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workbench.cli import CliError
from workbench.cli.models import format_columns
from workbench.models.catalog import CATALOG, TWIN_PREFIX


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "twin",
        help="write a synthetic twin of a model (its layout, random weights) for speed and "
        "memory tests",
        description=(
            "Write a GGUF file with a model's exact tensor names, shapes, types and metadata "
            "but random (or zero) weights, so speed and memory can be measured without the "
            "real weights. SOURCE is a local .gguf file (header read only), a hub file "
            "(owner/repo:FILE.gguf or owner/repo:QUANT; only header bytes are fetched), or "
            "a catalog model NAME or twin:NAME (see --list; built from its published "
            "configuration, or from its hub file's header). Twins are refused in answer "
            "comparisons and arenas."
        ),
    )
    p.add_argument("source", nargs="?", metavar="SOURCE")
    p.add_argument("-o", "--output", metavar="FILE", help="the .gguf file to write")
    p.add_argument("--quant", help="preset for catalog twins (default Q4_K_M), file for hub repos")
    p.add_argument(
        "--fill",
        default="random",
        help="random weights with valid scales (speed), or a sparse all-zero file (memory "
        "only, no disk cost)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--revision", default="main", help="hub branch, tag or commit")
    p.add_argument("--list", action="store_true", help="show the catalog models")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def twin_rows() -> list[dict[str, Any]]:
    """One dict per catalog model: the ``twin --list --json`` objects (the same names as
    ``pull --list``). ``source`` says what a twin is built from: the published
    configuration alone, or the hub file's header."""
    rows = []
    for e in CATALOG:
        hp = e.hparams
        rows.append({
            "name": e.name, "twin": f"{TWIN_PREFIX}{e.name}",
            "source": "configuration" if hp is not None else "hub header",
            "arch": hp.arch if hp else None, "layers": hp.n_layer if hp else None,
            "hidden": hp.n_embd if hp else None, "vocab": hp.n_vocab if hp else None,
            "repo": e.repo, "note": e.note,
        })  # fmt: skip
    return rows


def _list(as_json: bool) -> int:
    rows = twin_rows()
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [(r["twin"], r["arch"] or "-", str(r["layers"] or "-"), r["source"], r["note"])
             for r in rows]  # fmt: skip
    print(format_columns(("NAME", "ARCH", "LAYERS", "BUILT FROM", "NOTE"), table))
    return 0


def run(args: argparse.Namespace) -> int:
    from workbench.models.twin import build_twin, describe

    if args.list:
        return _list(args.json)
    if not args.source or not args.output:
        raise CliError("usage: workbench twin SOURCE -o FILE (see --list for catalog names)")
    if sys.stderr.isatty():  # a random twin of a large model takes minutes to write
        print(f"writing twin of {args.source} -> {args.output}", file=sys.stderr)
    try:
        result = build_twin(
            args.source, args.output, quant=args.quant, fill=args.fill, seed=args.seed,
            revision=args.revision,
        )  # fmt: skip
    except OSError as e:
        raise CliError(f"cannot write {args.output}: {e}") from None
    summary = describe(result)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        gib = result.data_bytes / 2**30
        print(f"{result.path}: {result.arch}, {result.n_tensors} tensors, {gib:.2f} GiB of "
              f"weights ({result.fill}), twin of {result.source}")  # fmt: skip
    return 0
