"""Twins against the real thing: speed of bundled-model twins, memory of catalog twins.

    python benchmarks/twin_parity.py bench  [--reps 60] [-p 64] [-n 16] [-t 1]
    python benchmarks/twin_parity.py memory [--ctx 4096] [NAME ...]

``bench`` writes a random-weight twin of each bundled model and benches original, a
byte copy (the control) and twin together, interleaved, printing twin / original and
copy / original tokens-per-second ratios: medians of per-repetition ratios, with 95%
intervals (a twin is faithful when its median ratios are within 5% of 1; the copy's
interval shows how finely this machine can tell two models apart).

``memory`` builds each catalog twin as a sparse all-zero file, loads it in
llama-cpp-python (mmap, no repacking) with a small context, and prints the KV /
recurrent-state buffers llama.cpp allocates next to workbench's planner figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def bench_parity(reps: int, n_prompt: int, n_gen: int, threads: int | None = None) -> int:
    """Original, a byte copy of it and its twin, benched together with ``interleave``:
    their repetitions take turns, and each comparison is the median of per-repetition
    ratios with a 95% interval. The copy is the control: it runs the very same bytes,
    so copy / original shows how closely this machine can compare two models at all.
    Sequential runs are not enough here: on a small shared VM a model's own runs
    minutes apart spread by 15% or more."""
    import shutil

    import polars as pl

    from workbench.models.registry import gemma_path, smollm_path
    from workbench.models.twin import twin_from_file
    from workbench.speed import BenchSettings, bench, speed_ratios

    worst = 0.0
    sweep = BenchSettings(n_threads=[threads]) if threads else None
    print(f"interleaved, {reps} repetitions each; median ratio [95% interval]")
    with tempfile.TemporaryDirectory() as tmp:
        for src in (gemma_path(), smollm_path()):
            if src is None:
                continue
            twin = Path(tmp) / f"twin-{src.name}"
            copy = Path(tmp) / f"copy-{src.name}"
            twin_from_file(src, twin)
            shutil.copyfile(src, copy)
            frame = bench([str(src), str(copy), str(twin)], n_prompt=n_prompt, n_gen=n_gen,
                          reps=reps, store=False, sweep=sweep, interleave=True)  # fmt: skip
            errors = frame.filter(pl.col("error").is_not_null())
            if errors.height:
                print(f"{src.name}: {errors['error'][0]}")
                return 1
            ratios = speed_ratios(frame, str(src))
            for test in ("pp", "tg"):
                base = frame.filter((pl.col("model_path") == str(src)) & (pl.col("test") == test))
                line = f"{src.name:34} {test}  original {base['tps_mean'].item():7.1f} t/s"
                for who, path in (("copy", copy), ("twin", twin)):
                    r = ratios.filter((pl.col("model") == path.stem.lower())
                                      & (pl.col("test") == test)).row(0, named=True)  # fmt: skip
                    line += f"  {who} {r['ratio']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
                    if who == "twin":
                        worst = max(worst, abs(r["ratio"] - 1))
                print(line, flush=True)
    print(f"twin / original: largest deviation of a median ratio {worst:.1%} (target <= 5%)")
    return 0 if worst <= 0.05 else 1


def memory_parity(names: list[str], ctx: int, flash_attn: bool) -> int:
    from workbench.gguf import read_model_info
    from workbench.models.memory import plan
    from workbench.models.twin import llama_cpp_memory, twin_entries, twin_from_catalog

    names = names or [e.name for e in twin_entries()]
    bad = 0
    print(f"ctx {ctx}, f16 KV, swa_full off, flash_attn {flash_attn}; MiB")
    print(f"{'model':18} {'weights GiB':>11} {'llama KV':>9} {'plan KV':>9} {'llama RS':>9} "
          f"{'plan RS':>9}  match")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = Path(tmp) / f"{name}.gguf"
            twin_from_catalog(name, path, fill="zeros")
            try:
                got = llama_cpp_memory(path, ctx, flash_attn=flash_attn)
            except Exception as e:  # report and go on with the other models
                print(f"{name:18} load failed: {e}")
                bad += 1
                continue
            finally:
                pass
            p = plan(read_model_info(path), ctx, flash_attn=flash_attn)
            ok = (abs(got.kv_bytes - p.kv_bytes) <= got.resolution
                  and abs(got.state_bytes - p.state_bytes) <= got.resolution)  # fmt: skip
            bad += not ok
            mib = 2**20
            print(f"{name:18} {p.weights_bytes / 2**30:11.2f} {got.kv_bytes / mib:9.2f} "
                  f"{p.kv_bytes / mib:9.2f} {got.state_bytes / mib:9.2f} "
                  f"{p.state_bytes / mib:9.2f}  {'yes' if ok else 'NO'}", flush=True)  # fmt: skip
            path.unlink(missing_ok=True)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--reps", type=int, default=60, help="repetitions (each is one pair)")
    b.add_argument("-p", "--n-prompt", type=int, default=64)
    b.add_argument("-n", "--n-gen", type=int, default=16)
    b.add_argument(
        "-t",
        "--threads",
        type=int,
        default=1,
        help="threads (default 1: leaves a core to the machine's own noise)",
    )
    m = sub.add_parser("memory")
    m.add_argument("names", nargs="*")
    m.add_argument("--ctx", type=int, default=4096)
    m.add_argument("--flash-attn", action="store_true")
    args = ap.parse_args(argv)
    if args.what == "bench":
        return bench_parity(args.reps, args.n_prompt, args.n_gen, args.threads)
    return memory_parity(args.names, args.ctx, args.flash_attn)


if __name__ == "__main__":
    sys.exit(main())
