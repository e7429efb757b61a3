"""The llama-cpp-python backend on the real bundled models (no mocks)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from workbench.backends.base import Done, Failed, GenerationConfig, Prompt, Token
from workbench.backends.llama_cpp import LlamaCppBackend

GREEDY = GenerationConfig(temperature=0.0, seed=7, max_tokens=16, n_ctx=512)


def _collect(backend: LlamaCppBackend, text: str, config: GenerationConfig = GREEDY):
    events = list(backend.stream(Prompt(text), config))
    assert isinstance(events[-1], Done | Failed)
    assert sum(isinstance(e, Done | Failed) for e in events) == 1
    return events


@pytest.fixture(scope="module")
def smol(smollm: Path):
    b = LlamaCppBackend(smollm, name="smol")
    yield b
    b.close()


@pytest.mark.slow
def test_streams_text_with_honest_figures(smol: LlamaCppBackend) -> None:
    events = _collect(smol, "Name three colours.")
    done = events[-1]
    assert isinstance(done, Done), done
    c = done.completion
    tokens = [e for e in events if isinstance(e, Token)]
    assert len(tokens) >= 2, "text arrives as a stream, not at once"
    assert c.text == "".join(t.text for t in tokens) and c.text.strip()
    assert "\x00" not in c.text
    assert c.ttft_s is not None and 0 < c.ttft_s <= c.total_s
    assert c.prompt_tokens and c.prompt_tokens > 5  # chat template applied
    assert c.completion_tokens and 0 < c.completion_tokens <= 16
    assert c.prompt_tps and c.prompt_tps > 0
    assert c.gen_tps and c.gen_tps > 0
    assert c.peak_rss_bytes and c.peak_rss_bytes > 50e6
    assert c.kv_cache_bytes and c.kv_cache_bytes > 0
    assert c.n_threads and c.n_ctx == 512
    assert c.finish_reason in ("stop", "length")


@pytest.mark.slow
def test_counters_are_per_request(smol: LlamaCppBackend) -> None:
    """The same prompt twice: the second request evaluates the whole prompt again (no
    prefix-cache leftovers in the figures) and generates the same greedy text."""
    a = _collect(smol, "Say hello.")[-1].completion
    b = _collect(smol, "Say hello.")[-1].completion
    assert a.text == b.text
    assert a.prompt_tokens == b.prompt_tokens
    assert b.load_s == 0.0, "the loaded model is reused"
    # gen_tps comes from n_eval / t_eval of this request alone
    assert b.gen_tps is not None and b.completion_tokens == a.completion_tokens


def test_spawn_and_load_are_reported_apart(smollm: Path) -> None:
    """Starting the worker (interpreter, import llama_cpp) is spawn_s; loading the model
    is load_s; a warm model costs neither, and a changed load setting reloads the model
    in the running worker."""
    b = LlamaCppBackend(smollm)
    try:
        first = _collect(b, "Hi")[-1].completion
        assert first.spawn_s and first.spawn_s > 0 and first.load_s and first.load_s > 0
        pid = b.pid
        warm = _collect(b, "Hi")[-1].completion
        assert (warm.spawn_s, warm.load_s) == (0.0, 0.0)
        other = _collect(b, "Hi", replace(GREEDY, n_ctx=256))[-1].completion
        assert other.spawn_s == 0.0 and other.load_s and other.load_s > 0
        assert b.pid == pid
    finally:
        b.close()


@pytest.mark.parametrize("arch", ["qwen35", "gemma3"])
def test_a_warm_model_answers_as_a_fresh_one(arch: str, tmp_path: Path) -> None:
    """Between requests only the cache's cells are cleared, not its buffers: a request
    after another one samples exactly what a fresh worker samples, for a hybrid
    (recurrent state + attention) and a sliding-window model alike."""
    from workbench.testing import write_fixture

    path = write_fixture(arch, tmp_path / f"{arch}.gguf")
    # Sampled, not greedy: any state left over from the first prompt would show.
    cfg = GenerationConfig(temperature=1.5, top_k=0, top_p=1.0, seed=1, max_tokens=12, n_ctx=256)
    warm, fresh = LlamaCppBackend(path), LlamaCppBackend(path)
    try:
        _collect(warm, "one two three four five six seven eight", cfg)
        again = _collect(warm, "nine", cfg)[-1].completion
        first = _collect(fresh, "nine", cfg)[-1].completion
        assert again.error is None and again.text.strip()
        assert again.load_s == 0.0
        assert (again.text, again.prompt_tokens) == (first.text, first.prompt_tokens)
    finally:
        warm.close()
        fresh.close()


@pytest.mark.slow
def test_seed_reproduces_sampled_text(smol: LlamaCppBackend) -> None:
    cfg = GenerationConfig(temperature=0.9, seed=1234, max_tokens=16, n_ctx=512)
    a = _collect(smol, "Write a word.", cfg)[-1].completion.text
    b = _collect(smol, "Write a word.", cfg)[-1].completion.text
    assert a == b


def test_ttft_is_the_first_token_whitespace_included(gemma: Path) -> None:
    """Gemma answers this prompt with "\n\n" first: time to first token ends there, as
    llama.cpp and serving benchmarks count it, not at the first visible word one decode
    step later."""
    b = LlamaCppBackend(gemma)
    try:
        prompt = "Explain in two sentences why the sky is blue."
        _collect(b, prompt)  # load, untimed
        t0 = time.perf_counter()
        arrivals: list[tuple[float, str]] = []
        events = []
        for ev in b.stream(Prompt(prompt), GREEDY):
            events.append(ev)
            if isinstance(ev, Token):
                arrivals.append((time.perf_counter() - t0, ev.text))
        c = events[-1].completion
        assert c.ttft_s is not None and c.ttfa_s is not None and c.load_s == 0.0
        first = arrivals[0][1]
        assert first[:1].isspace(), f"the answer no longer begins with whitespace: {first!r}"
        if first.strip():
            # The whitespace was held until a word came (it could have preceded a
            # thinking marker), but the first token still went out at once as a message
            # of its own: the clock stopped there, a decode step before the first text.
            assert c.ttft_s < c.ttfa_s
        else:
            assert c.ttft_s <= arrivals[0][0]
    finally:
        b.close()


def test_wall_rate_counts_the_decode_steps_of_its_window(smol: LlamaCppBackend) -> None:
    """gen_tps_wall = decode steps after the first token / (end - first token). An answer
    that ends on an end-of-generation token took one step per visible token after the
    first plus one for that token; an answer cut by max_tokens one step fewer."""
    cfg = GenerationConfig(temperature=0.0, seed=7, max_tokens=48, n_ctx=512)
    stop = _collect(smol, "What is 2+2? Answer with a number only.", cfg)[-1].completion
    assert stop.finish_reason == "stop" and stop.completion_tokens
    assert stop.gen_tps_wall and stop.total_s and stop.ttft_s
    window = stop.total_s - stop.ttft_s
    assert stop.gen_tps_wall * window == pytest.approx(stop.completion_tokens)
    cut = _collect(smol, "Count from 1 to 100.", replace(cfg, max_tokens=8))[-1].completion
    assert cut.finish_reason == "length" and cut.completion_tokens == 8
    assert cut.gen_tps_wall and cut.total_s and cut.ttft_s
    assert cut.gen_tps_wall * (cut.total_s - cut.ttft_s) == pytest.approx(7)


def test_a_new_seed_keeps_the_model_and_an_open_seed_is_recorded(
    smol: LlamaCppBackend,
) -> None:
    cfg = GenerationConfig(temperature=0.9, seed=1, max_tokens=12, n_ctx=512)
    _collect(smol, "Write a word.", cfg)
    pid = smol.pid
    other = _collect(smol, "Write a word.", replace(cfg, seed=2))[-1].completion
    assert (other.spawn_s, other.load_s, other.seed) == (0.0, 0.0, 2)
    assert smol.pid == pid, "a seed is per request: no reload, no new worker"
    drawn = _collect(smol, "Write a word.", replace(cfg, seed=None))[-1].completion
    assert isinstance(drawn.seed, int) and 0 <= drawn.seed < 0xFFFFFFFF
    again = _collect(smol, "Write a word.", replace(cfg, seed=drawn.seed))[-1].completion
    assert again.text == drawn.text, "the recorded seed reproduces the text"


def test_min_p_and_repeat_penalty_reach_the_sampler(smol: LlamaCppBackend) -> None:
    greedy = GenerationConfig(temperature=0.0, max_tokens=24, n_ctx=512)
    hot = replace(greedy, temperature=1.5, top_k=0, top_p=1.0, seed=3)

    def text(prompt: str, cfg: GenerationConfig) -> str:
        done = _collect(smol, prompt, cfg)[-1]
        assert isinstance(done, Done), done
        return done.completion.text

    plain = text("Name three colours.", greedy)
    # min_p = 1 keeps only the most likely token: even a hot sampler answers greedily
    assert text("Name three colours.", replace(hot, min_p=1.0)) == plain
    assert text("Name three colours.", replace(hot, min_p=0.0)) != plain
    cats = "Write the word cat ten times."
    assert text(cats, replace(greedy, repeat_penalty=1.5)) != text(cats, greedy)


@pytest.mark.slow
def test_base_model_gets_plain_completion(gemma: Path) -> None:
    b = LlamaCppBackend(gemma)
    try:
        done = _collect(b, "The capital of France is")[-1]
        assert isinstance(done, Done)
        # no chat template: the prompt is just BOS + the text's tokens
        assert done.completion.prompt_tokens is not None and done.completion.prompt_tokens < 10
        assert done.completion.text.strip()
    finally:
        b.close()


@pytest.mark.slow
def test_prompt_longer_than_context(smollm: Path) -> None:
    b = LlamaCppBackend(smollm)
    try:
        cfg = GenerationConfig(temperature=0, max_tokens=8, n_ctx=64)
        ev = _collect(b, "word " * 200, cfg)[-1]
        assert isinstance(ev, Failed)
        assert "longer than the context" in ev.message and "\n" not in ev.message
        # the worker survives and answers the next, shorter prompt
        assert isinstance(_collect(b, "Hi", cfg)[-1], Done)
    finally:
        b.close()


@pytest.mark.slow
def test_cancel_stops_generation(smol: LlamaCppBackend) -> None:
    cancel = threading.Event()
    cfg = GenerationConfig(temperature=0, max_tokens=400, n_ctx=1024)
    got = []
    for ev in smol.stream(Prompt("Count from 1 to 500."), cfg, cancel):
        got.append(ev)
        if isinstance(ev, Token) and len(got) >= 3:
            cancel.set()
    done = got[-1]
    assert isinstance(done, Done)
    assert done.completion.finish_reason == "cancelled"
    # None when the worker was too slow to answer Stop and was killed (a loaded machine)
    assert done.completion.completion_tokens is None or done.completion.completion_tokens < 400
    assert done.completion.text


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("missing", "not found"),
        ("truncated", "truncated"),
        ("corrupt", "corrupt header"),
        ("unknown_arch", "zzzzz"),
    ],
)
def test_bad_files_become_error_events(
    bad_files: dict[str, Path], kind: str, fragment: str
) -> None:
    b = LlamaCppBackend(bad_files[kind])
    try:
        ev = _collect(b, "Hi")[-1]
        assert isinstance(ev, Failed)
        assert fragment in ev.message, ev.message
        assert "\n" not in ev.message
        assert ev.completion.finish_reason == "error"
    finally:
        b.close()


@pytest.mark.slow
def test_close_ends_the_worker(smollm: Path) -> None:
    b = LlamaCppBackend(smollm)
    _collect(b, "Hi")
    pid = b.pid
    assert pid and b.loaded
    b.close()
    assert not b.loaded
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
