"""Is workbench's GGUF header reader faster than the gguf library's ``GGUFReader``?

``workbench.gguf.read_model_info`` reads only what the workbench needs (metadata, tensor
table, vocabulary size) and leaves the vocabulary's strings unparsed; ``gguf.GGUFReader``
maps the whole file and builds every field. The two take turns on the same file, round
by round (ABBA order), and the report is the paired time ratio workbench / GGUFReader:
the median over rounds with a distribution-free 95% interval. Target: below 1.

SmolLM2 by default: GGUFReader needs about a minute per read of Gemma 3's 262k-token
vocabulary on a 2-core machine.

    .venv/bin/python benchmarks/gguf_read.py [-m MODEL ...] [--rounds 8]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable


def main(argv: list[str] | None = None) -> int:
    from gguf import GGUFReader

    from workbench.gguf import read_model_info
    from workbench.host import host_info
    from workbench.models.registry import bundled_models, resolve
    from workbench.speed import paired_ratio

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", dest="models")
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args(argv)

    if args.models:
        refs = [resolve(m) for m in args.models]
    else:
        refs = [r for r in bundled_models() if "smollm" in r.name.lower()]
    if not refs:
        print("no model to read (make models, or pass -m MODEL)")
        return 1
    h = host_info()
    print(f"host: {h.cpu}, {h.physical_cores} physical / {h.logical_cores} logical cores")

    def timed(fn: Callable[[str], object], path: str) -> int:
        t0 = time.perf_counter_ns()
        fn(path)
        return time.perf_counter_ns() - t0

    worst = 0.0
    for ref in refs:
        ours: list[int] = []
        theirs: list[int] = []
        for i in range(args.rounds):
            for side in ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours"):
                if side == "ours":
                    ours.append(timed(read_model_info, ref.path))
                else:
                    theirs.append(timed(GGUFReader, ref.path))
        # paired_ratio(a, b) is the median of b / a: here ours / theirs, a ratio of times
        p = paired_ratio(theirs, ours)
        worst = max(worst, p.ratio)
        interval = "" if math.isnan(p.low) else f" [{p.low:.3f}, {p.high:.3f}]"
        print(
            f"{ref.name:<24} read_model_info {min(ours) / 1e6:8.1f} ms  "
            f"GGUFReader {min(theirs) / 1e6:8.1f} ms  "
            f"time ratio {p.ratio:.3f}{interval} ({p.pairs} rounds)"
        )
    print(f"largest time ratio workbench / GGUFReader: {worst:.3f} (target < 1): "
          + ("OK" if worst < 1 else "OVER"))  # fmt: skip
    return 0 if worst < 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
