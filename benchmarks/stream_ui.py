"""Does watching a generation in the ComparePanel slow it down?

The same generation (one model, greedy, fixed seed) runs with and without the panel
attached, interleaved, in one process: by default inside a real ipykernel started for the
purpose, so the panel's widget updates really travel over the kernel's comm (IOPub)
as they do in JupyterLab. The script prints the ratio of generation speed with the panel
to speed without it (target >= 0.95), for llama.cpp's own counter (``gen_tps``) and for
the wall-clock rate the consumer saw (``gen_tps_wall``), and the highest number of
redraws one column made in any one-second window (limit: 20).

    .venv/bin/python benchmarks/stream_ui.py [--model NAME] [--max-tokens 128] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET = 0.95
PROMPT = "Write a numbered list of forty short facts about the ocean."


def measure(
    model: str | None, max_tokens: int, reps: int, threads: int | None = 1
) -> dict[str, Any]:
    """Run baseline and panel generations alternately; return per-run figures."""
    from workbench.backends.base import GenerationConfig
    from workbench.models.registry import SMOLLM_NAME, resolve
    from workbench.runner import ResponseFinished, Runner
    from workbench.store import RunStore
    from workbench.widgets import ComparePanel

    ref = resolve(model or SMOLLM_NAME)
    config = GenerationConfig(
        max_tokens=max_tokens, temperature=0.0, seed=42, n_ctx=1024, n_threads=threads
    )
    store = RunStore(tempfile.mkdtemp(prefix="stream-ui-"))
    runner = Runner([ref], config, store=None)
    panel = ComparePanel(models=[ref], store=store, config=config)
    panel.prompt.value = PROMPT

    def baseline() -> dict[str, Any]:
        row: dict[str, Any] = {}
        for ev in runner.stream([PROMPT]):
            if isinstance(ev, ResponseFinished):
                row = ev.row
        return row

    def with_panel() -> dict[str, Any]:
        panel.run_button.click()
        if not panel.wait(600):
            raise RuntimeError("panel run did not finish")
        if panel.last_error:
            raise RuntimeError(panel.last_error)
        return panel.rows[-1]

    def figures(row: dict[str, Any]) -> dict[str, Any]:
        if row.get("error"):
            raise RuntimeError(row["error"])
        keys = ("gen_tps", "gen_tps_wall", "completion_tokens", "total_s")
        return {k: row.get(k) for k in keys}

    try:
        baseline()  # warm-up: load the model in both runners' workers
        with_panel()
        out: dict[str, Any] = {"model": ref.name, "baseline": [], "panel": [], "body_ids": []}
        for _ in range(reps):
            out["baseline"].append(figures(baseline()))
            t0 = time.monotonic()
            out["panel"].append(figures(with_panel()))
            col = next(iter(panel.columns.values()))
            out["panel"][-1]["redraws"] = col.redraws
            out["panel"][-1]["wall_s"] = time.monotonic() - t0
            out["body_ids"].append(col.body.model_id)
        return out
    finally:
        panel.close()
        runner.close()


def _in_kernel(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Run :func:`measure` inside a fresh ipykernel; also time the body widgets' updates
    as they arrive on IOPub."""
    from jupyter_client.manager import start_new_kernel

    spec_root = Path(tempfile.mkdtemp(prefix="stream-ui-kernel-"))
    spec = spec_root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "py", "language": "python"})
    )
    os.environ["JUPYTER_PATH"] = str(spec_root)
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(Path(__file__).parents[1]))
    updates: dict[str, list[float]] = {}
    result: list[str] = []
    errors: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_msg" and content["data"].get("method") == "update":
            if "value" in content["data"].get("state", {}):
                updates.setdefault(content["comm_id"], []).append(time.monotonic())
        elif kind == "stream" and content["text"].startswith("RESULT "):
            result.append(content["text"][7:])
        elif kind == "error":
            errors.append("\n".join(content["traceback"]))

    code = (
        "import json, runpy\n"
        f"ns = runpy.run_path({str(Path(__file__).resolve())!r}, run_name='stream_ui')\n"
        f"r = ns['measure']({args.model!r}, {args.max_tokens}, {args.reps}, {args.threads!r})\n"
        "print('RESULT ' + json.dumps(r), flush=True)\n"
    )
    try:
        kc.execute_interactive(code, output_hook=hook, timeout=1800)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    if errors or not result:
        raise RuntimeError("kernel run failed:\n" + "\n".join(errors))
    return json.loads(result[0]), updates


def _max_per_second(stamps: list[float]) -> int:
    best, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] < t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="registry name (default: SmolLM2 135M)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="llama.cpp threads (default 1: a shared machine's scheduling noise "
        "hits multi-threaded decoding far harder; 0 = physical cores)",
    )
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="no kernel: widgets without a frontend (comm messages dropped)",
    )
    ap.add_argument("--strict", action="store_true", help="exit 1 when below the target")
    args = ap.parse_args(argv)
    args.threads = args.threads or None

    updates: dict[str, list[float]] = {}
    if args.in_process:
        res = measure(args.model, args.max_tokens, args.reps, args.threads)
    else:
        res, updates = _in_kernel(args)

    threads = args.threads or "physical cores"
    print(
        f"model {res['model']}, {args.max_tokens} tokens, {args.reps} interleaved reps, "
        f"threads: {threads}, {'in process' if args.in_process else 'in an ipykernel'}"
    )
    print(
        f"{'rep':>3} {'base t/s':>9} {'panel t/s':>9} {'base wall':>9} {'panel wall':>10}"
        f" {'redraws':>7}"
    )
    for i, (b, p) in enumerate(zip(res["baseline"], res["panel"], strict=True)):
        print(
            f"{i:>3} {b['gen_tps']:>9.1f} {p['gen_tps']:>9.1f} {b['gen_tps_wall']:>9.1f}"
            f" {p['gen_tps_wall']:>10.1f} {p['redraws']:>7}"
        )
    ok = True
    for key in ("gen_tps", "gen_tps_wall"):
        base = statistics.median(r[key] for r in res["baseline"])
        panel = statistics.median(r[key] for r in res["panel"])
        ratio = panel / base
        ok = ok and ratio >= TARGET
        print(
            f"{key:<13} baseline {base:7.1f}  with panel {panel:7.1f}  ratio {ratio:.3f}"
            f"  (target >= {TARGET})"
        )
    if updates:
        rates = [_max_per_second(updates.get(i, [])) for i in res["body_ids"]]
        print(f"max redraws of a column in any 1 s window (over IOPub): {max(rates)} (limit 20)")
        ok = ok and max(rates) <= 20
    print("target met" if ok else "BELOW TARGET")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
