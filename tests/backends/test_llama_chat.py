"""In process: conversations through the GGUF's chat template, thinking split and timed.

Tiny fixture GGUFs carry the real published Qwen 3.5 and Gemma 4 chat templates
(``workbench.testing.templates``); llama.cpp generates from their random weights, and a
grammar makes them write a thinking block and an answer (random weights would never
close one by themselves). The bundled models check conversations and base models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workbench.backends.base import GenerationConfig, Message, Prompt
from workbench.runner import Runner
from workbench.testing.templates import write_chat_fixture
from workbench.thinking import GEMMA4_CHANNEL, ThinkingFormat

TEMPLATES = Path(__file__).parents[1] / "data" / "templates"
# Two words of thinking, the close marker, then a one-word answer.
QWEN_GRAMMAR = 'root ::= [a-z]{3,8} " " [a-z]{3,8} "\\n</think>\\n\\n" [a-z]{3,8} "."'
GEMMA_GRAMMAR = 'root ::= "<|channel>thought\\n" [a-z]{3,8} "<channel|>" [a-z]{3,8} "."'
CFG = GenerationConfig(temperature=0.0, seed=1, max_tokens=40, n_ctx=512)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chat-models")
    return {
        arch: write_chat_fixture(arch, root / f"{arch}.gguf", (TEMPLATES / name).read_text())
        for arch, name in (("qwen35", "qwen3.5-4b.jinja"), ("gemma4", "gemma-4-31b-it.jinja"))
    }


def _row(model: Path | str, prompt: str | Prompt, **settings: Any) -> dict[str, Any]:
    from dataclasses import replace

    with Runner([str(model)], replace(CFG, **settings)) as runner:
        return runner.run([prompt]).row(0, named=True)


@pytest.mark.slow
def test_thinking_and_answer_are_split_and_timed(fixtures: dict[str, Path]) -> None:
    row = _row(fixtures["qwen35"], "What is 2 + 2?", thinking="on", grammar=QWEN_GRAMMAR)
    assert row["error"] is None, row["error"]
    words = row["reasoning"].split(" ")
    assert len(words) == 2 and all(w.isalpha() for w in words)
    assert row["response"].endswith(".") and row["response"][:-1].isalpha()
    assert "</think>" not in row["response"] + row["reasoning"]
    assert row["ttfa_s"] > row["ttft_s"] > 0
    # Every generated token is thinking or answer; the answer's few are not thinking.
    assert 0 < row["reasoning_tokens"] < row["completion_tokens"]
    assert row["prompt_mode"] == "chat" and row["thinking"] == "on"
    assert json.loads(row["extra"])["prompt_thinking"] == "open"  # the template opened it


@pytest.mark.slow
def test_gemma4_thought_channel_is_split(fixtures: dict[str, Path]) -> None:
    row = _row(fixtures["gemma4"], "What is 2 + 2?", thinking="on", grammar=GEMMA_GRAMMAR)
    assert row["error"] is None, row["error"]
    assert row["reasoning"].isalpha() and row["response"][:-1].isalpha()
    assert "channel" not in row["response"]
    assert row["ttfa_s"] > row["ttft_s"] and row["reasoning_tokens"] > 0


@pytest.mark.slow
def test_thinking_off_changes_what_the_qwen35_fixture_is_sent(fixtures: dict[str, Path]) -> None:
    answer = 'root ::= [a-z]{3,8} "."'
    rows = {t: _row(fixtures["qwen35"], "Hi", thinking=t, grammar=answer) for t in ("on", "off")}
    on, off = rows["on"], rows["off"]
    states = {t: json.loads(r["extra"])["prompt_thinking"] for t, r in rows.items()}
    assert states == {"on": "open", "off": "closed"}
    # Off renders an empty, closed block after the generation prompt: more tokens.
    assert off["prompt_tokens"] > on["prompt_tokens"]
    # Off: everything is answer. On: the prompt opened a block that never closed.
    assert off["response"] and off["reasoning"] == "" and off["reasoning_tokens"] == 0
    assert off["ttfa_s"] == off["ttft_s"]
    assert on["response"] == "" and on["reasoning"][:-1].isalpha()
    assert on["ttfa_s"] is None and json.loads(on["extra"])["reasoning_unterminated"] is True


def _template_tokens(model: str, messages: list[dict[str, str]]) -> int:
    """Prompt tokens of ``messages`` rendered by llama-cpp-python's formatter, built as
    the worker builds it, here in the test process."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = Llama(model_path=model, vocab_only=True, verbose=False)
    m = llm._model
    formatter = Jinja2ChatFormatter(
        llm.metadata["tokenizer.chat_template"],
        eos_token=m.token_get_text(m.token_eos()),
        bos_token=m.token_get_text(m.token_bos()),
    )
    prompt = formatter(messages=messages).prompt  # type: ignore[arg-type]
    return len(llm.tokenize(prompt.encode(), add_bos=False, special=True))


@pytest.mark.slow
def test_a_conversation_reaches_the_in_process_model_through_its_template(
    bundled: list[str],
) -> None:
    from workbench.models.registry import resolve

    history = (Message("user", "Name a colour."), Message("assistant", "Blue."))
    prompt = Prompt("And a fruit?", id="conv", history=history)
    cfg = GenerationConfig(temperature=0.0, max_tokens=2, n_ctx=512, system_prompt="Be brief.")
    with Runner(bundled, cfg) as runner:
        rows = {
            (r["model"], r["prompt_id"]): r for r in runner.run([prompt, "And a fruit?"]).to_dicts()
        }
    smollm = resolve("smollm2")
    row = rows[(smollm.name, "conv")]
    assert row["error"] is None, row["error"]
    sent = [
        {"role": "system", "content": "Be brief."},
        *(m.as_dict() for m in history),
        {"role": "user", "content": "And a fruit?"},
    ]
    assert row["prompt_tokens"] == _template_tokens(smollm.path, sent)
    assert row["turn"] == 2 and json.loads(row["history"]) == sent[1:3]
    # The base model gets the same conversation as a transcript to continue.
    base, single = rows[("gemma-3-270m", "conv")], rows[("gemma-3-270m", "adhoc")]
    assert base["error"] is None and base["prompt_mode"] == "completion"
    assert base["prompt_tokens"] > single["prompt_tokens"]


def test_marker_control_tokens_are_rendered() -> None:
    """A control token a family's markers are made of renders as its text (Gemma 4's
    ``<|channel>`` is one); other control tokens stay hidden. SmolLM2's ``<|im_start|>``
    stands in for one here."""
    import llama_cpp
    from llama_cpp import Llama

    from workbench.llama.gen_worker import _piece_fn, marker_tokens
    from workbench.models.registry import resolve

    llm = Llama(model_path=resolve("smollm2").path, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    fmt = ThinkingFormat("test", "<|im_start|>think", "<|im_end|>")
    preserved = marker_tokens(llama_cpp, llm, fmt)
    start, end = (llm.tokenize(t, add_bos=False, special=True)[0] for t in (b"<|im_start|>",
                  b"<|im_end|>"))  # fmt: skip
    assert preserved == {start, end}
    assert marker_tokens(llama_cpp, llm, GEMMA4_CHANNEL) == frozenset()  # plain text in this vocab
    shown, hidden = _piece_fn(llama_cpp, vocab, preserved), _piece_fn(llama_cpp, vocab)
    assert shown(start) == b"<|im_start|>" and hidden(start) == b""
