"""The llama-cpp-python backend on the real bundled models (no mocks)."""

from __future__ import annotations

import os
import threading
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


@pytest.mark.slow
def test_seed_reproduces_sampled_text(smol: LlamaCppBackend) -> None:
    cfg = GenerationConfig(temperature=0.9, seed=1234, max_tokens=16, n_ctx=512)
    a = _collect(smol, "Write a word.", cfg)[-1].completion.text
    b = _collect(smol, "Write a word.", cfg)[-1].completion.text
    assert a == b


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
    pid = b._proc.pid if b._proc else None
    assert pid and b.loaded
    b.close()
    assert not b.loaded
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
