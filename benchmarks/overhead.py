"""Do workbench's figures agree with a bare llama-cpp-python loop timed alongside?
(issues 2 and 17)

For each model, in one run, alternate (ABBA) between

- workbench: :class:`workbench.backends.llama_cpp.LlamaCppBackend` streaming a response
  (the model in its worker process, tokens over a pipe), reading the row's figures
  ``ttft_s`` and ``gen_tps_wall``; and
- bare: ``Llama.generate`` + ``detokenize`` in this process, the same model, load
  parameters, prompt tokens (chat template applied the same way), sampling settings
  (greedy, fixed seed, min_p, repeat penalty), threads, and a cache cleared the same way,
  timed here: time to first token from before the prompt is formatted, and decode steps
  after the first token per second until the loop ends;

then, with fresh processes on both sides, ``load_s`` (workbench: a new worker's model
load) against ``Llama(...)`` plus the chat formatter in a fresh ``python`` that has
imported llama_cpp. The start of a worker (``spawn_s``) is reported apart, next to the
bare interpreter's start plus ``import llama_cpp``.

Each figure is judged by the paired ratio workbench / bare: the median over rounds of
the per-round ratios, with a distribution-free 95% interval
(:func:`workbench.speed.paired_ratio`; 6 rounds or more). Target: every ratio within 5%
of 1 (for time to first token and load time, above 1 means workbench is slower; for the
rate, below 1). 24 pairs of each by default: on the shared 2-core VM 12 pairs of loads
scattered the median by up to 7% (intervals about 0.9-1.3) while 24 settled within 3%.

    .venv/bin/python benchmarks/overhead.py [-m MODEL] [--max-tokens 64] [--rounds 24]
        [--load-rounds 24] [-t THREADS]
"""

from __future__ import annotations

import argparse
import codecs
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

PROMPT = (
    "Write a long, detailed story about a lighthouse keeper who finds a message in a "
    "bottle. Describe the sea, the weather and the keeper's thoughts."
)
TARGET = 0.05

# A bare load in a fresh interpreter: prints the seconds of `import llama_cpp` and of
# Llama(...) + the chat formatter (what a bare chat loop needs before its first prompt).
_BARE_LOAD = r"""
import json, sys, time
t0 = time.perf_counter()
import llama_cpp
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
t1 = time.perf_counter()
path, kwargs, flash = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
low = llama_cpp.llama_cpp
if flash is None:
    low.LLAMA_FLASH_ATTN_TYPE_ENABLED = low.LLAMA_FLASH_ATTN_TYPE_AUTO
t2 = time.perf_counter()
llm = Llama(model_path=path, flash_attn=flash is not False, verbose=False, **kwargs)
template = llm.metadata.get("tokenizer.chat_template")
if template:
    m = llm._model
    Jinja2ChatFormatter(template, eos_token=m.token_get_text(m.token_eos()),
                        bos_token=m.token_get_text(m.token_bos()))
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t3 - t2}))
"""


@dataclass(frozen=True)
class Sample:
    """One measured generation."""

    ttft_s: float
    gen_tps_wall: float
    tokens: int
    text: str
    prompt_eval_s: float
    """llama.cpp's own prompt-evaluation time (its counters), part of ttft_s."""


class Bare:
    """The bare llama-cpp-python loop, built with workbench's own load parameters."""

    def __init__(self, path: str, config: Any) -> None:
        import llama_cpp as lc
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from workbench.backends.base import resolve_sampling
        from workbench.gguf import read_model_info
        from workbench.llama.params import flash_attn_arg, llama_kwargs, load_params

        self.lc = lc
        info = read_model_info(path)
        self.params = load_params(config, info).as_dict()
        with flash_attn_arg(lc, self.params["flash_attn"]) as flash:
            self.llm = Llama(
                model_path=path, flash_attn=flash, verbose=False, **llama_kwargs(self.params)
            )
        # The sampling values workbench resolves for this file (unset fields: its defaults).
        self.config = resolve_sampling(config, info.recommended_sampling).applied(config)
        self.vocab = lc.llama_model_get_vocab(self.llm._model.model)
        self.mem = lc.llama_get_memory(self.llm.ctx)
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.formatter = None
        if template:
            m = self.llm._model
            eos = m.token_get_text(m.token_eos()) if m.token_eos() >= 0 else ""
            bos = m.token_get_text(m.token_bos()) if m.token_bos() >= 0 else ""
            self.formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)

    def _prompt_tokens(self, text: str) -> list[int]:
        if self.formatter is None:
            return self.llm.tokenize(text.encode(), add_bos=True, special=False)
        result = self.formatter(messages=[{"role": "user", "content": text}])
        return self.llm.tokenize(
            result.prompt.encode(), add_bos=not result.added_special, special=True
        )

    def run(self) -> Sample:
        lc, llm, c = self.lc, self.llm, self.config
        t0 = time.perf_counter()
        tokens = self._prompt_tokens(PROMPT)
        llm.set_seed(c.seed)
        llm.n_tokens = 0
        lc.llama_memory_clear(self.mem, False)
        lc.llama_perf_context_reset(llm.ctx)
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        parts: list[str] = []
        n = produced = 0
        t_first = 0.0
        for tok in llm.generate(
            tokens,
            top_k=c.top_k,
            top_p=c.top_p,
            min_p=c.min_p,
            temp=c.temperature,
            repeat_penalty=c.repeat_penalty,
            reset=False,
        ):
            produced += 1
            if produced == 1:
                t_first = time.perf_counter()
            if lc.llama_vocab_is_eog(self.vocab, tok):
                break
            parts.append(dec.decode(llm.detokenize([tok])))
            n += 1
            if n >= c.max_tokens:
                break
        t_end = time.perf_counter()
        rate = (produced - 1) / (t_end - t_first) if produced > 1 else math.nan
        t_p = lc.llama_perf_context(llm.ctx).t_p_eval_ms / 1e3
        return Sample(t_first - t0, rate, n, "".join(parts), t_p)

    def clear_costs(self) -> tuple[float, float]:
        """Seconds to clear this context's cache with and without zeroing its buffers."""
        out = []
        for data in (True, False):
            t0 = time.perf_counter()
            for _ in range(5):
                self.lc.llama_memory_clear(self.mem, data)
            out.append((time.perf_counter() - t0) / 5)
        return out[0], out[1]


def run_workbench(backend: Any, config: Any) -> tuple[Sample, Any]:
    from workbench.backends.base import Done, Failed, Prompt, Token

    parts: list[str] = []
    for ev in backend.stream(Prompt(PROMPT), config):
        if isinstance(ev, Token):
            parts.append(ev.text)
        elif isinstance(ev, Failed):
            raise RuntimeError(ev.message)
        elif isinstance(ev, Done):
            c = ev.completion
            t_p = c.prompt_tokens / c.prompt_tps
            sample = Sample(c.ttft_s, c.gen_tps_wall, c.completion_tokens, "".join(parts), t_p)
            return sample, c
    raise RuntimeError("stream ended without Done")


def bare_load(path: str, params: dict[str, Any]) -> dict[str, float]:
    from workbench.llama.params import llama_kwargs

    out = subprocess.run(
        [sys.executable, "-P", "-c", _BARE_LOAD, path, json.dumps(llama_kwargs(params)),
         json.dumps(params["flash_attn"])],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _ns(seconds: list[float]) -> list[int]:
    return [int(s * 1e9) for s in seconds]


def _verdict(name: str, p: Any, *, rate: bool) -> tuple[str, float]:
    """A line for one figure and its deviation from 1 (the paired median's)."""
    interval = "" if math.isnan(p.low) else f" [{p.low:.3f}, {p.high:.3f}]"
    what = "workbench / bare rate" if rate else "workbench / bare time"
    return f"  {name:<14} {what}: {p.ratio:.3f}{interval} ({p.pairs} pairs)", abs(p.ratio - 1)


def main(argv: list[str] | None = None) -> int:
    from workbench.backends.base import GenerationConfig
    from workbench.backends.llama_cpp import LlamaCppBackend
    from workbench.host import host_info, physical_cores
    from workbench.models.registry import default_models, resolve
    from workbench.speed import paired_ratio

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", dest="models")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=24, help="paired generations per side")
    ap.add_argument("--load-rounds", type=int, default=24, help="paired fresh loads per side")
    ap.add_argument("-t", "--threads", type=int, default=None)
    args = ap.parse_args(argv)

    refs = [resolve(m) for m in args.models] if args.models else default_models()
    threads = args.threads or physical_cores()
    config = GenerationConfig(
        temperature=0.0, seed=42, max_tokens=args.max_tokens, n_threads=threads
    )
    h = host_info()
    print(
        f"host: {h.cpu}, {h.physical_cores} physical / {h.logical_cores} logical cores; "
        f"threads={threads} max_tokens={args.max_tokens} rounds={args.rounds} "
        f"load_rounds={args.load_rounds}"
    )
    worst = 0.0
    for ref in refs:
        print(f"{ref.name}:")
        backend = LlamaCppBackend(ref.path, ref.name)
        bare = Bare(ref.path, config)
        try:
            run_workbench(backend, config)  # load + warm-up, untimed
            bare.run()
            wb: list[Sample] = []
            br: list[Sample] = []
            for i in range(args.rounds):
                for side in ("wb", "bare") if i % 2 == 0 else ("bare", "wb"):
                    if side == "wb":
                        wb.append(run_workbench(backend, config)[0])
                    else:
                        br.append(bare.run())
            same = {s.text for s in wb} == {s.text for s in br} and len({s.text for s in wb}) == 1
            ttft = paired_ratio(_ns([s.ttft_s for s in br]), _ns([s.ttft_s for s in wb]))
            # rate ratio = bare time per step / workbench time per step
            rate = paired_ratio(
                _ns([1 / s.gen_tps_wall for s in wb]), _ns([1 / s.gen_tps_wall for s in br])
            )
            clear_true, clear_false = bare.clear_costs()
            bare.llm.close()
            # fresh processes on both sides: a new worker, a new interpreter
            loads: list[float] = []
            spawns: list[float] = []
            bare_loads: list[dict[str, float]] = []
            cold = replace(config, max_tokens=1)
            for i in range(args.load_rounds):
                for side in ("wb", "bare") if i % 2 == 0 else ("bare", "wb"):
                    if side == "wb":
                        backend.close()
                        c = run_workbench(backend, cold)[1]
                        loads.append(c.load_s)
                        spawns.append(c.spawn_s)
                    else:
                        bare_loads.append(bare_load(ref.path, bare.params))
            load = paired_ratio(_ns([b["load_s"] for b in bare_loads]), _ns(loads))
        finally:
            backend.close()
        med = statistics.median
        print(
            f"  {wb[0].tokens} tokens per answer, same text on both sides: {same}; "
            f"ttft workbench {med(s.ttft_s for s in wb) * 1e3:.1f} ms, "
            f"bare {med(s.ttft_s for s in br) * 1e3:.1f} ms; "
            f"rate workbench {med(s.gen_tps_wall for s in wb):.1f} t/s, "
            f"bare {med(s.gen_tps_wall for s in br):.1f} t/s"
        )
        print(
            "  ttft outside llama.cpp's prompt evaluation: "
            f"workbench {med(s.ttft_s - s.prompt_eval_s for s in wb) * 1e3:.1f} ms, "
            f"bare {med(s.ttft_s - s.prompt_eval_s for s in br) * 1e3:.1f} ms"
        )
        print(
            f"  load_s workbench {med(loads):.3f} s, "
            f"bare {med(b['load_s'] for b in bare_loads):.3f} s; "
            f"spawn_s (reported apart) workbench {med(spawns):.3f} s, "
            f"bare interpreter + import llama_cpp {med(b['import_s'] for b in bare_loads):.3f} s"
        )
        print(
            f"  clearing the cache: buffers zeroed {clear_true * 1e3:.3f} ms, "
            f"cells only {clear_false * 1e3:.4f} ms"
        )
        for name, p, is_rate in (
            ("ttft_s", ttft, False),
            ("gen_tps_wall", rate, True),
            ("load_s", load, False),
        ):
            line, dev = _verdict(name, p, rate=is_rate)
            worst = max(worst, dev)
            print(line)
    ok = worst <= TARGET
    print(
        f"largest deviation from 1: {worst:.3f} (target <= {TARGET}): " + ("OK" if ok else "OVER")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
