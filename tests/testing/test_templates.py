"""Tiny GGUF fixtures carrying the real Gemma 4 and Qwen 3.5 chat templates.

llama-cpp-python's own Jinja formatter (built from the fixture the way the in-process
worker builds it) must render a conversation exactly as Hugging Face's renderer renders
the published template, for every thinking setting; and the thinking setting must change
what the Qwen 3.5 fixture renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers.hf_chat_template import hf_render
from workbench.gguf import GGUFHeader, read_header
from workbench.testing.fixtures import write_fixture
from workbench.testing.templates import CHAT_TEMPLATE_KEY, set_chat_template, write_chat_fixture
from workbench.thinking import (
    GEMMA4_CHANNEL,
    THINK_TAGS,
    ReasoningSplitter,
    format_for,
    prompt_thinking,
    split_text,
    template_kwargs,
)

TEMPLATES = Path(__file__).parents[1] / "data" / "templates"
FIXTURES = {"gemma4": "gemma-4-31b-it.jinja", "qwen35": "qwen3.5-4b.jinja"}

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n4"},
    {"role": "user", "content": "And 3 + 3?"},
]
GEMMA_CONVERSATION: list[dict[str, Any]] = [
    *CONVERSATION[:2],
    {"role": "assistant", "content": "<|channel>thought\nAdd them.<channel|>4"},
    CONVERSATION[3],
]


def _template(arch: str) -> str:
    return (TEMPLATES / FIXTURES[arch]).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def chat_fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chat-fixtures")
    return {a: write_chat_fixture(a, root / f"{a}.gguf", _template(a)) for a in FIXTURES}


@pytest.fixture(scope="module")
def formatters(chat_fixtures: dict[str, Path]) -> dict[str, tuple[Any, str, str]]:
    return {arch: _llama_formatter(path) for arch, path in chat_fixtures.items()}


def _llama_formatter(path: Path) -> tuple[Any, str, str]:
    """The formatter, bos and eos text exactly as the in-process worker builds them."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
    template = llm.metadata[CHAT_TEMPLATE_KEY]
    model = llm._model
    eos_id, bos_id = model.token_eos(), model.token_bos()
    eos = model.token_get_text(eos_id) if eos_id >= 0 else ""
    bos = model.token_get_text(bos_id) if bos_id >= 0 else ""
    return Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos), bos, eos


def _header(path: Path, *keep: str) -> GGUFHeader:
    with path.open("rb") as f:
        return read_header(f, keep_arrays=keep)


def _gguf_special_tokens(path: Path) -> tuple[str, str]:
    """bos and eos text read from the file's header without llama.cpp (the HF side)."""
    meta = _header(path, "tokenizer.ggml.tokens").metadata
    tokens = meta["tokenizer.ggml.tokens"]
    return tokens[meta["tokenizer.ggml.bos_token_id"]], tokens[meta["tokenizer.ggml.eos_token_id"]]


@pytest.mark.parametrize("arch", list(FIXTURES))
@pytest.mark.parametrize("thinking", ["default", "on", "off"])
def test_llama_cpp_formatter_renders_as_hugging_face(
    chat_fixtures: dict[str, Path],
    formatters: dict[str, tuple[Any, str, str]],
    arch: str,
    thinking: str,
) -> None:
    path = chat_fixtures[arch]
    published = _template(arch)
    formatter, bos, eos = formatters[arch]
    assert formatter.template == published  # the fixture carries the template byte for byte
    assert (bos, eos) == _gguf_special_tokens(path)
    fmt = format_for(chat_template=published)
    extra = template_kwargs(thinking, fmt)  # type: ignore[arg-type]
    messages = GEMMA_CONVERSATION if arch == "gemma4" else CONVERSATION
    ours = formatter(messages=messages, **extra).prompt
    theirs = hf_render(published, messages, bos_token=bos, eos_token=eos, **extra)
    assert ours == theirs
    assert "And 3 + 3?" in ours
    # Both templates drop the thinking of earlier answers from the history.
    assert "Add them." not in ours


def test_thinking_setting_changes_the_qwen35_fixture_prompt(
    formatters: dict[str, tuple[Any, str, str]],
) -> None:
    formatter, _, _ = formatters["qwen35"]
    fmt = format_for(chat_template=formatter.template)
    assert fmt is THINK_TAGS
    prompts = {
        t: formatter(messages=CONVERSATION, **template_kwargs(t, fmt)).prompt
        for t in ("default", "on", "off")
    }
    assert prompts["on"] != prompts["off"]
    assert prompts["on"].endswith("<|im_start|>assistant\n<think>\n")
    assert prompts["off"].endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert prompts["default"] == prompts["on"]  # Qwen 3.5 4B thinks unless told not to
    assert [prompt_thinking(prompts[t], fmt) for t in ("on", "off")] == ["open", "closed"]
    # What the model writes after an "open" prompt is reasoning until its </think>.
    out = split_text("Six.\n</think>\n\n6", fmt, in_reasoning=True)
    assert (out.reasoning, out.answer) == ("Six.", "6")


def test_thinking_setting_changes_the_gemma4_fixture_prompt(
    formatters: dict[str, tuple[Any, str, str]],
) -> None:
    formatter, _, _ = formatters["gemma4"]
    fmt = format_for(chat_template=formatter.template)
    assert fmt is GEMMA4_CHANNEL
    on = formatter(messages=GEMMA_CONVERSATION, enable_thinking=True).prompt
    off = formatter(messages=GEMMA_CONVERSATION, enable_thinking=False).prompt
    assert "<|think|>" in on and "<|think|>" not in off
    assert (prompt_thinking(on, fmt), prompt_thinking(off, fmt)) == ("free", "closed")


def test_the_fixture_still_loads_and_generates(chat_fixtures: dict[str, Path]) -> None:
    from llama_cpp import Llama

    llm = Llama(model_path=str(chat_fixtures["qwen35"]), n_ctx=256, verbose=False)
    tokens = llm.tokenize(b"Hello", add_bos=True)
    out = [t for _, t in zip(range(3), llm.generate(tokens, temp=0.0), strict=False)]
    assert len(out) == 3


def test_set_chat_template_replaces_or_removes_the_key(tmp_path: Path) -> None:
    src = write_fixture("llama", tmp_path / "base.gguf", n_layer=1)
    before = _header(src, "tokenizer.ggml.tokens")
    assert before.metadata[CHAT_TEMPLATE_KEY]  # SmolLM2's, borrowed
    size = src.stat().st_size
    with src.open("rb") as f:
        f.seek(before.data_offset)
        data = f.read()
    longer = "{{ messages[0].content }}" * 500  # shifts the data: it must be re-aligned
    for template in (longer, "{{ x }}", None):
        dst = set_chat_template(src, template, tmp_path / "new.gguf")
        after = _header(dst, "tokenizer.ggml.tokens")
        assert after.metadata.get(CHAT_TEMPLATE_KEY) == template
        rest = {k: v for k, v in after.metadata.items() if k != CHAT_TEMPLATE_KEY}
        assert rest == {k: v for k, v in before.metadata.items() if k != CHAT_TEMPLATE_KEY}
        assert after.tensors == before.tensors
        assert after.data_offset % 32 == 0
        with dst.open("rb") as f:
            f.seek(after.data_offset)
            assert f.read() == data
    set_chat_template(src, None)  # in place: now a base model
    assert CHAT_TEMPLATE_KEY not in _header(src).metadata
    assert src.stat().st_size < size
    set_chat_template(src, "{{ y }}")  # and a key is added back
    assert _header(src).metadata[CHAT_TEMPLATE_KEY] == "{{ y }}"


def test_fixture_generation_splits_into_thinking_and_answer(
    chat_fixtures: dict[str, Path], formatters: dict[str, tuple[Any, str, str]]
) -> None:
    """Real llama.cpp generation from the Qwen 3.5 fixture, thinking on: the prompt opens
    the block, a grammar makes the random-weight model close it and answer, and the
    splitter, fed token by token, separates the two and times the first answer token."""
    import codecs

    from llama_cpp import Llama, LlamaGrammar

    formatter, _, _ = formatters["qwen35"]
    fmt = format_for(chat_template=formatter.template)
    prompt = formatter(messages=CONVERSATION, enable_thinking=True).prompt
    state = prompt_thinking(prompt, fmt)
    assert state == "open"
    grammar = LlamaGrammar.from_string(
        'root ::= [a-z]{3,12} " " [a-z]{3,12} "\\n</think>\\n\\n" [a-z]{3,12} "."', verbose=False
    )
    llm = Llama(model_path=str(chat_fixtures["qwen35"]), n_ctx=512, seed=1, verbose=False)
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    splitter = ReasoningSplitter(fmt, in_reasoning=True)
    decoder = codecs.getincrementaldecoder("utf-8")()
    for n, tok in enumerate(llm.generate(tokens, temp=0.8, grammar=grammar)):
        if tok == llm.token_eos() or n >= 64:
            break
        splitter.feed(decoder.decode(llm.detokenize([tok])))
    splitter.finish()
    got = splitter.result()
    assert got.reasoning and " " in got.reasoning and "</think>" not in got.reasoning
    assert got.answer.endswith(".") and got.answer[:-1].isalpha()
    assert got.t_first is not None and got.t_first_answer is not None
    assert got.t_first_answer > got.t_first
    assert not got.unterminated
