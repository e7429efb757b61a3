"""``workbench pull NAME_OR_REPO[:FILE]``: download a GGUF model into the hub cache."""

from __future__ import annotations

import argparse
import json
import sys


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


def _catalog(as_json: bool) -> int:
    from dataclasses import asdict

    from workbench.models.hub import CATALOG

    if as_json:
        print(json.dumps([asdict(e) for e in CATALOG], indent=2))
        return 0
    width = max(len(e.name) for e in CATALOG)
    rwidth = max(len(e.repo) for e in CATALOG)
    for e in CATALOG:
        print(f"{e.name:<{width}}  {e.repo:<{rwidth}}  {e.params:<24}  {e.note}")
    return 0


def run(args: argparse.Namespace) -> int:
    from workbench.cli import CliError

    if args.list:
        return _catalog(args.json)
    if not args.spec:
        raise CliError("name a model: workbench pull NAME_OR_REPO[:FILE] (see --list)")
    from workbench.models.hub import pull

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
        }
        print(json.dumps(doc, indent=2))
        return 0
    size = sum(f.size for f in result.files)
    print(f"{result.name} ({result.quant or 'unknown quant'}, {size / 2**30:.2f} GiB): "
          f"{result.reason}", file=sys.stderr)  # fmt: skip
    print(result.path)
    return 0
