"""What does workbench cost per generated token? (issue 2)

In one run, alternate several times between

- workbench: :class:`workbench.backends.llama_cpp.LlamaCppBackend` streaming (the model in
  its worker process, tokens over a pipe), and
- bare: ``Llama.generate`` + detokenize in this process, the same model, prompt tokens,
  sampling settings (temperature 0, fixed seed) and thread count,

and compare wall-clock generation tokens/s: (tokens - 1) / (time of the last token - time
of the first), as a user watching the stream sees it. The ratio of the medians
(workbench / bare) is the figure; target >= 0.97.

    .venv/bin/python benchmarks/overhead.py [-m MODEL] [--max-tokens 128] [--rounds 7]
        [--profile]

``--profile`` also runs the bare loop and a workbench stream under cProfile (the parent
side) and prints where the time goes.
"""

from __future__ import annotations

import argparse
import codecs
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

PROMPT = (
    "Write a long, detailed story about a lighthouse keeper who finds a message in a "
    "bottle. Describe the sea, the weather and the keeper's thoughts."
)


@dataclass(frozen=True)
class Sample:
    """One measured generation."""

    tokens: int
    first_to_last_s: float
    text: str

    @property
    def tps(self) -> float:
        return (self.tokens - 1) / self.first_to_last_s if self.tokens > 1 else float("nan")


class Bare:
    """The bare llama-cpp-python loop, built with workbench's own load parameters."""

    def __init__(self, path: str, config: Any) -> None:
        import llama_cpp as lc
        from llama_cpp import Llama

        from workbench.backends.llama_cpp import _load_params
        from workbench.gguf import read_model_info

        self.lc = lc
        params = _load_params(config, read_model_info(path))
        flash = params.pop("flash_attn")
        saved = lc.LLAMA_FLASH_ATTN_TYPE_ENABLED
        if flash is None:  # llama.cpp's auto, as the workbench worker asks for it
            lc.LLAMA_FLASH_ATTN_TYPE_ENABLED = lc.LLAMA_FLASH_ATTN_TYPE_AUTO
        try:
            self.llm = Llama(
                model_path=path, flash_attn=flash is not False, verbose=False, **params
            )
        finally:
            lc.LLAMA_FLASH_ATTN_TYPE_ENABLED = saved
        self.config = config
        self.tokens = self._prompt_tokens(PROMPT)

    def _prompt_tokens(self, text: str) -> list[int]:
        llm = self.llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            return llm.tokenize(text.encode(), add_bos=True, special=False)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        m = llm._model
        eos = m.token_get_text(m.token_eos()) if m.token_eos() >= 0 else ""
        bos = m.token_get_text(m.token_bos()) if m.token_bos() >= 0 else ""
        result = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)(
            messages=[{"role": "user", "content": text}]
        )
        return llm.tokenize(result.prompt.encode(), add_bos=not result.added_special, special=True)

    def run(self) -> Sample:
        lc, llm, c = self.lc, self.llm, self.config
        llm.set_seed(c.seed)
        llm.reset()
        lc.llama_memory_clear(lc.llama_get_memory(llm.ctx), True)
        vocab = lc.llama_model_get_vocab(llm._model.model)
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        parts: list[str] = []
        n = 0
        t_first = t_last = 0.0
        for tok in llm.generate(
            self.tokens,
            top_k=c.top_k,
            top_p=c.top_p,
            min_p=0.05,
            temp=c.temperature,
            repeat_penalty=1.0,
            reset=True,
        ):
            if lc.llama_vocab_is_eog(vocab, tok):
                break
            parts.append(dec.decode(llm.detokenize([tok])))
            n += 1
            t_last = time.perf_counter()
            if n == 1:
                t_first = t_last
            if n >= c.max_tokens:
                break
        return Sample(n, t_last - t_first, "".join(parts))


class WorkerLoop:
    """workbench's worker-side generation loop (``_llama_worker._Model.generate``) run in
    this process, its pipe drained by a thread: the worker's Python per-token cost without
    the second process. Used by ``--profile`` to split the overhead."""

    def __init__(self, path: str, config: Any) -> None:
        import multiprocessing as mp
        import os
        import tempfile
        import threading

        from workbench.backends import _llama_worker
        from workbench.backends.llama_cpp import _load_params
        from workbench.gguf import read_model_info

        fd, log = tempfile.mkstemp(suffix=".log")
        os.close(fd)
        self.model = _llama_worker._Model(path, _load_params(config, read_model_info(path)), log)
        self.config = config
        self.send, self.recv = mp.Pipe()
        self.cancel = mp.get_context("spawn").Event()
        self.times: list[float] = []
        self.done = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            msg = self.recv.recv()
            if msg[0] == "token":
                self.times.append(time.perf_counter())
            else:
                self.done.set()

    def run(self) -> Sample:
        c = self.config
        req = {
            "prompt": PROMPT,
            "system_prompt": None,
            "temperature": c.temperature,
            "top_p": c.top_p,
            "top_k": c.top_k,
            "seed": c.seed,
            "max_tokens": c.max_tokens,
        }
        self.times.clear()
        self.done.clear()
        self.model.generate(req, self.send, self.cancel)
        self.done.wait()
        return Sample(len(self.times), self.times[-1] - self.times[0], "")


def run_workbench(backend: Any, config: Any) -> Sample:
    from workbench.backends.base import Done, Failed, Prompt, Token

    parts: list[str] = []
    t_first: float | None = None
    t_last = 0.0
    for ev in backend.stream(Prompt(PROMPT), config):
        if isinstance(ev, Token):
            t_last = time.perf_counter()
            if t_first is None:
                t_first = t_last
            parts.append(ev.text)
        elif isinstance(ev, Failed):
            raise RuntimeError(ev.message)
        elif isinstance(ev, Done):
            n = ev.completion.completion_tokens or 0
            return Sample(n, t_last - (t_first or t_last), "".join(parts))
    raise RuntimeError("stream ended without Done")


def main(argv: list[str] | None = None) -> int:
    from workbench.backends.base import GenerationConfig
    from workbench.backends.llama_cpp import LlamaCppBackend
    from workbench.host import host_info, physical_cores
    from workbench.models.registry import default_models, resolve

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", dest="models")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("-t", "--threads", type=int, default=None)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)

    refs = [resolve(m) for m in args.models] if args.models else default_models()
    threads = args.threads or physical_cores()
    config = GenerationConfig(
        temperature=0.0, seed=42, max_tokens=args.max_tokens, n_threads=threads
    )
    h = host_info()
    print(
        f"host: {h.cpu}, {h.physical_cores} physical / {h.logical_cores} logical cores; "
        f"threads={threads} max_tokens={args.max_tokens} rounds={args.rounds}"
    )
    worst = float("inf")
    for ref in refs:
        backend = LlamaCppBackend(ref.path, ref.name)
        bare = Bare(ref.path, config)
        try:
            run_workbench(backend, config)  # load + warm-up, untimed
            bare.run()
            wb: list[float] = []
            br: list[float] = []
            texts = set()
            for i in range(args.rounds):
                order = ("wb", "bare") if i % 2 == 0 else ("bare", "wb")
                for side in order:
                    s = run_workbench(backend, config) if side == "wb" else bare.run()
                    (wb if side == "wb" else br).append(s.tps)
                    texts.add((side, s.tokens, s.text))
                print(
                    f"  {ref.name} round {i + 1}: workbench {wb[-1]:.1f} bare {br[-1]:.1f} t/s",
                    file=sys.stderr,
                )
            mw, mb = statistics.median(wb), statistics.median(br)
            paired = statistics.median(w / b for w, b in zip(wb, br, strict=True))
            same = len({n for _, n, _ in texts}) == 1
            ratio = mw / mb
            worst = min(worst, ratio)
            n_tok = next(iter(texts))[1]
            print(
                f"{ref.name:<24} tokens {n_tok:4d}  workbench {mw:8.2f} t/s  bare {mb:8.2f} "
                f"t/s  ratio {ratio:.3f} (paired median {paired:.3f})"
                + ("" if same else "  [token counts differ!]")
            )
            if args.profile:
                _profile(backend, bare, config)
        finally:
            backend.close()
    print(f"lowest ratio: {worst:.3f} (target >= 0.97): " + ("OK" if worst >= 0.97 else "UNDER"))
    return 0 if worst >= 0.97 else 1


def _profile(backend: Any, bare: Bare, config: Any) -> None:
    import cProfile
    import io
    import pstats

    loop = WorkerLoop(bare.llm.model_path, config)
    loop.run()
    br, lp = [], []
    for _ in range(5):
        br.append(bare.run().tps)
        lp.append(loop.run().tps)
    mb, ml = statistics.median(br), statistics.median(lp)
    print(f"worker loop in this process {ml:.2f} t/s, bare {mb:.2f} t/s, ratio {ml / mb:.3f}")
    runs = (
        ("bare", bare.run),
        ("worker loop in this process", loop.run),
        ("workbench (parent side)", lambda: run_workbench(backend, config)),
    )
    for name, fn in runs:
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(12)
        print(f"--- profile: {name}\n{buf.getvalue()}")


if __name__ == "__main__":
    raise SystemExit(main())
