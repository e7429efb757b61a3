"""``workbench pull NAME_OR_REPO[:FILE]``: download a GGUF model into the hub cache."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workbench.cli import CliError
from workbench.cli.models import format_columns
from workbench.models.catalog import CATALOG


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pull",
        help="download a GGUF model (catalog name or HF repo) into the hub cache",
        description=(
            "Download a GGUF model through huggingface_hub into the hub cache, resumably, "
            "sha256-checked. NAME_OR_REPO is a catalog name (see --list) or owner/repo; "
            "after ':' name a quantization (Q4_K_M) or a file in the repo. Without one, a "
            "quantization that fits this machine's memory is chosen. HF_HUB_OFFLINE=1 "
            "answers from the cache."
        ),
    )
    p.add_argument("spec", nargs="?", metavar="NAME_OR_REPO[:FILE]")
    p.add_argument("--quant", help="quantization to pick (Q4_K_M, Q8_0, ...)")
    p.add_argument("--revision", default="main", help="branch, tag or commit (default main)")
    p.add_argument("--ctx", type=int, default=4096, help="context length to fit in memory")
    p.add_argument("--budget", type=float, metavar="GIB", help="memory budget in GiB")
    p.add_argument("--list", action="store_true", help="show the catalog and exit")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def catalog_rows() -> list[dict[str, Any]]:
    """One dict per catalog model: the ``pull --list --json`` objects."""
    return [
        {"name": e.name, "family": e.family, "title": e.title, "repo": e.repo,
         "params": e.params, "quants": list(e.quants), "note": e.note,
         "configuration": e.hparams is not None}
        for e in CATALOG
    ]  # fmt: skip


def _catalog(as_json: bool) -> int:
    rows = catalog_rows()
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [(str(r["name"]), str(r["repo"]), str(r["params"]), str(r["note"])) for r in rows]
    print(format_columns(("NAME", "REPO", "PARAMS", "NOTE"), table))
    return 0


def run(args: argparse.Namespace) -> int:
    from workbench.models.hub import pull

    if args.list:
        return _catalog(args.json)
    if not args.spec:
        raise CliError("name a model: workbench pull NAME_OR_REPO[:FILE] (see --list)")

    budget = int(args.budget * 2**30) if args.budget else None
    result = pull(
        args.spec,
        quant=args.quant,
        revision=args.revision,
        budget_bytes=budget,
        ctx=args.ctx,
        progress=True,
    )
    if args.json:
        doc = {
            "name": result.name,
            "repo": result.repo,
            "revision": result.revision,
            "quant": result.quant,
            "path": str(result.path),
            "offline": result.offline,
            "reason": result.reason,
            "downloaded_bytes": result.downloaded_bytes,
            "files": [
                {
                    "repo_path": f.repo_path,
                    "path": str(f.local_path),
                    "size_bytes": f.size,
                    "sha256": f.sha256,
                }
                for f in result.files
            ],
            "mmproj": None
            if result.mmproj is None
            else {
                "repo_path": result.mmproj.repo_path,
                "path": str(result.mmproj.local_path),
                "size_bytes": result.mmproj.size,
                "sha256": result.mmproj.sha256,
            },
        }
        print(json.dumps(doc, indent=2))
        return 0
    size = sum(f.size for f in result.files)
    print(f"{result.name} ({result.quant or 'unknown quant'}, {size / 2**30:.2f} GiB): "
          f"{result.reason}", file=sys.stderr)  # fmt: skip
    if result.mmproj is not None:
        print(f"vision projector: {result.mmproj.local_path}", file=sys.stderr)
    print(result.path)
    return 0
