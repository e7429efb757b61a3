"""``workbench twin SOURCE -o FILE``: write a synthetic twin (real layout, random weights)."""

from __future__ import annotations

import argparse
import json
import sys


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
            "a published configuration catalog:NAME (see --list). Twins are refused in "
            "answer comparisons and arenas."
        ),
    )
    p.add_argument("source", nargs="?", metavar="SOURCE")
    p.add_argument("-o", "--output", metavar="FILE", help="the .gguf file to write")
    p.add_argument("--quant", help="preset for catalog twins (default Q4_K_M), file for hub repos")
    p.add_argument(
        "--fill",
        choices=("random", "zeros"),
        default="random",
        help="random weights with valid scales (speed), or a sparse all-zero file (memory "
        "only, no disk cost)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--revision", default="main", help="hub branch, tag or commit")
    p.add_argument("--list", action="store_true", help="show the built-in configurations")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def _list(as_json: bool) -> int:
    from workbench.models.twin_catalog import CATALOG

    rows = [
        {"name": f"catalog:{c.name}", "arch": c.arch, "layers": c.n_layer, "hidden": c.n_embd,
         "vocab": c.n_vocab, "note": c.note}
        for c in CATALOG
    ]  # fmt: skip
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(str(r["name"])) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['arch']:<10} {r['layers']:>3} layers  {r['note']}")
    return 0


def run(args: argparse.Namespace) -> int:
    from workbench.cli import CliError

    if args.list:
        return _list(args.json)
    if not args.source or not args.output:
        raise CliError("usage: workbench twin SOURCE -o FILE (see --list for catalog names)")
    from workbench.models.twin import build_twin, describe

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
