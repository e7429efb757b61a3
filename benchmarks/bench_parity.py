"""Does ``workbench bench`` measure what a bare llama-cpp-python loop measures?

For each model, in one run, alternate two measurements of the same thing several times:

- workbench: :func:`workbench.speed.bench` (a spawned child, the raw llama.cpp API);
- bare: the obvious direct loop written here, in this process: ``Llama(...)`` with the
  same settings, random tokens through ``Llama.eval`` in batches of ``n_batch`` for pp,
  one ``Llama.eval([token])`` per generated token for tg, one warm-up, the cache cleared
  before each repetition.

The two sides take turns round by round (ABBA), and each round gives a mean t/s per side;
the report is the paired ratio workbench / bare for pp and tg: the median over rounds of
the per-round ratios, with a distribution-free 95% interval (:func:`workbench.speed.
paired_ratio`, 6 rounds or more), so that the drift of a shared machine's speed between
rounds cancels within each pair. Target: the median within 5% of 1.

    .venv/bin/python benchmarks/bench_parity.py [-m MODEL ...] [-p 128] [-n 64] [--rounds 12]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from typing import Any

from workbench.speed import RateStats, rate_stats


class _BareTest:
    """One context of a plain llama-cpp-python ``Llama`` and llama-bench's two loops."""

    def __init__(self, path: str, n_ctx: int, settings: dict[str, Any]) -> None:
        import llama_cpp as lc
        from llama_cpp import Llama

        self.lc = lc
        self.llm = Llama(
            model_path=path, n_ctx=n_ctx, n_gpu_layers=-1, swa_full=False, verbose=False, **settings
        )
        self.rng = random.Random(1)
        self.n_vocab = self.llm.n_vocab()
        self.bos = [self.llm.token_bos()] if self.llm._model.add_bos_token() else []
        self.mem = lc.llama_get_memory(self.llm.ctx)

    def clear(self) -> None:
        self.llm.reset()
        self.lc.llama_memory_clear(self.mem, False)

    def pp(self, n: int) -> None:
        tokens = self.bos + [self.rng.randrange(self.n_vocab) for _ in range(n - len(self.bos))]
        self.llm.eval(tokens)
        self.lc.llama_synchronize(self.llm.ctx)

    def tg(self, n: int) -> None:
        tok = self.bos[0] if self.bos else self.rng.randrange(self.n_vocab)
        for _ in range(n):
            self.llm.eval([tok])
            self.lc.llama_synchronize(self.llm.ctx)
            tok = self.rng.randrange(self.n_vocab)


def bare_bench(
    path: str, *, n_prompt: int, n_gen: int, reps: int, settings: dict[str, Any]
) -> dict[str, RateStats]:
    """The rates of pp and tg (as workbench's bench summarizes them), measured with a plain
    llama-cpp-python loop: one warm-up, then ``reps`` timed runs on a cleared cache."""
    out: dict[str, RateStats] = {}
    for test, n in (("pp", n_prompt), ("tg", n_gen)):
        b = _BareTest(path, n, settings)
        run = b.pp if test == "pp" else b.tg
        b.clear()
        run(n if test == "pp" else 1)
        times_ns = []
        for _ in range(reps):
            b.clear()
            t0 = time.perf_counter_ns()
            run(n)
            times_ns.append(time.perf_counter_ns() - t0)
        out[test] = rate_stats(times_ns, n)
        b.llm.close()
    return out


SPREAD_EXCESS = 0.02


def main(argv: list[str] | None = None) -> int:
    from workbench.host import host_info, physical_cores
    from workbench.models.registry import default_models, resolve
    from workbench.speed import BenchSettings, bench, paired_ratio

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", dest="models")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=5, help="repetitions per measurement")
    ap.add_argument("-t", type=int, default=None, help="threads (default: physical cores)")
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args(argv)

    refs = [resolve(m) for m in args.models] if args.models else default_models()
    threads = args.t or physical_cores()
    n_batch, n_ubatch = 2048, 512
    h = host_info()
    print(
        f"host: {h.cpu}, {h.physical_cores} physical / {h.logical_cores} logical cores; "
        f"threads={threads} p={args.p} n={args.n} r={args.r} rounds={args.rounds}"
    )
    worst = 0.0
    spread_ok = True
    for ref in refs:
        # Flash attention as llama.cpp's auto resolves it, so the bare loop (which can only
        # say on or off) runs with the same setting.
        probe = bench(
            [ref],
            n_prompt=0,
            n_gen=1,
            reps=1,
            store=None,
            warmup=False,
            sweep=BenchSettings(n_threads=[threads]),
        )
        fa = bool(probe["flash_attn_used"][0])
        sweep = BenchSettings(
            n_threads=[threads], n_batch=[n_batch], n_ubatch=[n_ubatch], flash_attn=[fa]
        )
        bare_set = {
            "n_threads": threads,
            "n_threads_batch": threads,
            "n_batch": n_batch,
            "n_ubatch": n_ubatch,
            "flash_attn": fa,
        }
        wb: dict[str, list[float]] = {"pp": [], "tg": []}
        bare: dict[str, list[float]] = {"pp": [], "tg": []}
        wb_cv: dict[str, list[float]] = {"pp": [], "tg": []}
        bare_cv: dict[str, list[float]] = {"pp": [], "tg": []}
        for i in range(args.rounds):
            order = ("wb", "bare") if i % 2 == 0 else ("bare", "wb")
            for side in order:
                if side == "wb":
                    f = bench(
                        [ref], n_prompt=args.p, n_gen=args.n, reps=args.r, sweep=sweep, store=None
                    )
                    if f["error"].is_not_null().any():
                        print(f"{ref.name}: workbench bench failed: {f['error'].to_list()}")
                        return 1
                    for r in f.to_dicts():
                        wb[r["test"]].append(r["tps_mean"])
                        wb_cv[r["test"]].append(r["tps_sd"] / r["tps_mean"])
                else:
                    b = bare_bench(
                        ref.path, n_prompt=args.p, n_gen=args.n, reps=args.r, settings=bare_set
                    )
                    for t, v in b.items():
                        bare[t].append(v.mean)
                        bare_cv[t].append(v.sd / v.mean)
            print(
                f"  {ref.name} round {i + 1}: "
                + "  ".join(f"{t} wb {wb[t][-1]:.1f} bare {bare[t][-1]:.1f}" for t in wb),
                file=sys.stderr,
            )
        for t in ("pp", "tg"):
            mw, mb = statistics.median(wb[t]), statistics.median(bare[t])
            # rate ratio = bare time per token / workbench time per token, round by round
            p = paired_ratio([int(1e9 / v) for v in wb[t]], [int(1e9 / v) for v in bare[t]])
            worst = max(worst, abs(p.ratio - 1))
            cw, cb = statistics.median(wb_cv[t]), statistics.median(bare_cv[t])
            spread_ok = spread_ok and cw <= cb + SPREAD_EXCESS
            interval = "" if math.isnan(p.low) else f" [{p.low:.3f}, {p.high:.3f}]"
            print(
                f"{ref.name:<24} {t}{args.p if t == 'pp' else args.n:<5} fa={int(fa)} "
                f"workbench {mw:9.2f} t/s  bare {mb:9.2f} t/s  "
                f"paired ratio {p.ratio:.3f}{interval} ({p.pairs} rounds)  "
                f"rep CV workbench {cw:.3f} bare {cb:.3f}"
            )
    print(
        f"largest deviation of a paired ratio from 1: {worst:.3f} (target <= 0.05): "
        + ("OK" if worst <= 0.05 else "OVER")
    )
    print(
        f"repetition spread (median CV) at most the bare loop's + {SPREAD_EXCESS:.2f}: "
        + ("OK" if spread_ok else "OVER")
    )
    return 0 if worst <= 0.05 and spread_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
