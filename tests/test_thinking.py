"""The thinking layer: family markers against the published templates, prompt states,
and the streaming splitter (every split position, random chunkings, timestamps, fields).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from tests.helpers.hf_chat_template import hf_render
from workbench.thinking import (
    FAMILIES,
    FORMATS,
    GEMMA4_CHANNEL,
    THINK_TAGS,
    Piece,
    ReasoningSplitter,
    Split,
    ThinkingFormat,
    delta_reasoning,
    family_for,
    format_for,
    prompt_thinking,
    prompt_thinking_on,
    request_fields,
    split_text,
    template_kwargs,
)

TEMPLATES = Path(__file__).parent / "data" / "templates"
CONVERSATION = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3 + 3?"},
]


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize(
    ("file", "fmt"),
    [
        ("gemma-4-31b-it.jinja", GEMMA4_CHANNEL),
        ("qwen3.5-4b.jinja", THINK_TAGS),
        ("qwen3-0.6b.jinja", THINK_TAGS),
        ("glm-4.6.jinja", THINK_TAGS),
        ("glm-4.7-flash.jinja", THINK_TAGS),
    ],
)
def test_each_published_template_has_the_recorded_markers_and_switch(
    file: str, fmt: ThinkingFormat
) -> None:
    text = _template(file)
    assert fmt.open in text and fmt.close in text and fmt.switch in text
    assert format_for(chat_template=text) is fmt


def test_a_template_without_markers_has_no_format() -> None:
    chatml = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    assert format_for(chat_template=chatml) is None
    # The template decides over the architecture: a Qwen 3 Instruct-2507 has no thinking.
    assert format_for(chat_template=chatml, arch="qwen3") is None


def test_families_by_architecture_and_by_served_name() -> None:
    assert family_for(arch="gemma4").format is GEMMA4_CHANNEL  # type: ignore[union-attr]
    assert family_for(arch="qwen35moe").family == "qwen3.5"  # type: ignore[union-attr]
    assert family_for(arch="glm4moe").family == "glm4.5"  # type: ignore[union-attr]
    assert family_for(arch="llama") is None
    assert family_for(name="google/gemma-4-26B-A4B-it").family == "gemma4"  # type: ignore[union-attr]
    assert family_for(name="qwen3.5:9b").family == "qwen3.5"  # type: ignore[union-attr]
    assert format_for(name="Qwen3-30B-A3B") is THINK_TAGS
    assert format_for(name="smollm2-135m") is None
    # Every family's archs are distinct, so a lookup is never ambiguous.
    archs = [a for f in FAMILIES for a in f.archs]
    assert len(archs) == len(set(archs))
    assert {f.format for f in FAMILIES} <= set(FORMATS)


def test_thinking_setting_becomes_template_and_request_fields() -> None:
    assert template_kwargs("on", THINK_TAGS) == {"enable_thinking": True}
    assert template_kwargs("off", GEMMA4_CHANNEL) == {"enable_thinking": False}
    assert template_kwargs("default", THINK_TAGS) == {}
    assert template_kwargs("off", None) == {}
    assert request_fields("off", THINK_TAGS) == {"chat_template_kwargs": {"enable_thinking": False}}
    assert request_fields("default", THINK_TAGS) == {}


def test_delta_reasoning_reads_every_engine_field() -> None:
    assert delta_reasoning({"reasoning_content": "a", "content": None}) == "a"  # llama-server
    assert delta_reasoning({"reasoning": "b"}) == "b"  # vLLM >= 0.11, Ollama /v1
    assert delta_reasoning({"thinking": "c"}) == "c"  # Ollama /api/chat message
    assert delta_reasoning({"content": "d", "reasoning_content": None}) == ""


# --------------------------------------------------------------------------- prompt states


@pytest.mark.parametrize(
    ("file", "thinking", "state"),
    [
        # Qwen 3.5 (4B and up): the template opens the block unless told not to.
        ("qwen3.5-4b.jinja", "default", "open"),
        ("qwen3.5-4b.jinja", "on", "open"),
        ("qwen3.5-4b.jinja", "off", "closed"),
        # Gemma 4: off unless asked; on, the model opens the thought channel itself.
        ("gemma-4-31b-it.jinja", "default", "closed"),
        ("gemma-4-31b-it.jinja", "on", "free"),
        ("gemma-4-31b-it.jinja", "off", "closed"),
        ("qwen3-0.6b.jinja", "default", "free"),
        ("qwen3-0.6b.jinja", "off", "closed"),
        ("glm-4.6.jinja", "default", "free"),
        ("glm-4.6.jinja", "off", "closed"),
        ("glm-4.7-flash.jinja", "default", "open"),
        ("glm-4.7-flash.jinja", "off", "closed"),
    ],
)
def test_prompt_state_of_each_template_and_setting(file: str, thinking: str, state: str) -> None:
    text = _template(file)
    fmt = format_for(chat_template=text)
    prompt = hf_render(
        text,
        CONVERSATION,
        bos_token="<bos>",
        **template_kwargs(thinking, fmt),  # type: ignore[arg-type]
    )
    assert prompt_thinking(prompt, fmt) == state


def test_gemma4_on_puts_the_think_token_in_the_system_turn() -> None:
    text = _template("gemma-4-31b-it.jinja")
    on = hf_render(text, CONVERSATION, bos_token="<bos>", enable_thinking=True)
    off = hf_render(text, CONVERSATION, bos_token="<bos>", enable_thinking=False)
    assert on.startswith("<bos><|turn>system\n<|think|>") and "<|think|>" not in off
    assert off.endswith("<|turn>model\n<|channel>thought\n<channel|>")


def test_prompt_state_edge_cases() -> None:
    assert prompt_thinking("...<|im_start|>assistant\n<think>\n", THINK_TAGS) == "open"
    assert prompt_thinking("<think>\n\n</think>\n\n", THINK_TAGS) == "closed"
    assert prompt_thinking("user said <think> then text", THINK_TAGS) == "free"
    assert prompt_thinking("anything", None) == "free"
    assert [prompt_thinking_on(s) for s in ("open", "closed", "free")] == [True, False, None]


# --------------------------------------------------------------------------- split_text

# (text, format, prompt left a block open) -> (reasoning, answer, unterminated)
CASES: list[tuple[str, ThinkingFormat | None, bool, tuple[str, str, bool]]] = [
    ("<think>\nLet me see.\n</think>\n\nThe answer is 4.", THINK_TAGS, False,
     ("Let me see.", "The answer is 4.", False)),
    ("No markers at all.", THINK_TAGS, False, ("", "No markers at all.", False)),
    ("  leading space kept", THINK_TAGS, False, ("", "  leading space kept", False)),
    ("<think>cut off by max_tokens", THINK_TAGS, False, ("cut off by max_tokens", "", True)),
    # The prompt opened the block (Qwen 3.5): no opening marker in the output.
    ("Thinking.\n</think>\n\nAnswer.", THINK_TAGS, True, ("Thinking.", "Answer.", False)),
    ("still thinking </thi", THINK_TAGS, True, ("still thinking </thi", "", True)),
    # A close with no open and no prompt state: what came before was reasoning.
    ("Hidden open.</think>\nAnswer", THINK_TAGS, False, ("Hidden open.", "Answer", False)),
    ("\n\n<think>a</think>b", THINK_TAGS, False, ("a", "b", False)),
    # After the answer began, <think> is answer text (no repeats for these families).
    ("Use <think> tags</think> like this", THINK_TAGS, False,
     ("Use <think> tags", " like this", False)),
    ("<think>r</think>Quote: <think>x</think>", THINK_TAGS, False,
     ("r", "Quote: <think>x</think>", False)),
    ("a < b and <thin", THINK_TAGS, False, ("", "a < b and <thin", False)),
    ("<think></think>\n\nOnly answer", THINK_TAGS, False, ("", "Only answer", False)),
    ("<think>\n\n</think>\n\n", THINK_TAGS, False, ("", "", False)),
    # Gemma 4: thought channel, may come back after answer text, may end with a stray close.
    ("<|channel>thought\nPlan.<channel|>The answer.", GEMMA4_CHANNEL, False,
     ("Plan.", "The answer.", False)),
    ("<|channel>thought\nA<channel|>One. <|channel>thought\nB<channel|>Two<channel|>",
     GEMMA4_CHANNEL, False, ("A\n\nB", "One. Two", False)),
    ("<|channel>thought\n<channel|>Off: empty channel", GEMMA4_CHANNEL, False,
     ("", "Off: empty channel", False)),
    ("<|channel>final text", GEMMA4_CHANNEL, False, ("", "<|channel>final text", False)),
    ("<think>not Gemma's</think>", GEMMA4_CHANNEL, False,
     ("", "<think>not Gemma's</think>", False)),
    ("<think>x</think>y", None, False, ("", "<think>x</think>y", False)),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fmt", "opened", "want"), CASES)
def test_split_text(
    text: str, fmt: ThinkingFormat | None, opened: bool, want: tuple[str, str, bool]
) -> None:
    s = split_text(text, fmt, in_reasoning=opened)
    assert (s.reasoning, s.answer, s.unterminated) == want


# --------------------------------------------------------------------------- streaming


def _stream(
    text: str, fmt: ThinkingFormat | None, cuts: list[int], opened: bool = False
) -> tuple[Split, str, str]:
    """Feed ``text`` cut at ``cuts``; return the result and the pieces joined by kind."""
    sp = ReasoningSplitter(fmt, in_reasoning=opened, clock=itertools.count().__next__)
    pieces: list[Piece] = []
    bounds = [0, *cuts, len(text)]
    for a, b in itertools.pairwise(bounds):
        pieces += sp.feed(text[a:b])
    pieces += sp.finish()
    reasoning = answer = ""
    for p in pieces:
        assert p.text
        if p.moved:
            answer = ""
        if p.kind == "reasoning":
            reasoning += p.text
        else:
            answer += p.text
    return sp.result(), reasoning, answer


def _check(text: str, fmt: ThinkingFormat | None, cuts: list[int], opened: bool) -> None:
    want = split_text(text, fmt, in_reasoning=opened)
    got, reasoning, answer = _stream(text, fmt, cuts, opened)
    assert (got.reasoning, got.answer, got.unterminated) == (
        want.reasoning,
        want.answer,
        want.unterminated,
    ), (text, cuts)
    assert (reasoning, answer) == (got.reasoning, got.answer), (text, cuts)


@pytest.mark.parametrize(("text", "fmt", "opened", "want"), CASES)
def test_every_split_position_gives_the_same_split(
    text: str, fmt: ThinkingFormat | None, opened: bool, want: tuple[str, str, bool]
) -> None:
    n = len(text)
    for i in range(n + 1):
        for j in range(i, n + 1):
            _check(text, fmt, [i, j], opened)
    _check(text, fmt, list(range(1, n)), opened)  # one character per chunk


_FRAGMENTS = {
    THINK_TAGS: ["<think>", "</think>", "<", "</", "think", ">", "\n", "\n\n", " ", "a", "Bc"],
    GEMMA4_CHANNEL: ["<|channel>thought", "<channel|>", "<|channel>", "thought", "<|", "|>",
                     "\n", " ", "x", "Yz"],
}  # fmt: skip


@pytest.mark.parametrize("fmt", [THINK_TAGS, GEMMA4_CHANNEL])
def test_random_texts_and_chunkings_give_the_same_split(fmt: ThinkingFormat) -> None:
    rng = random.Random(1234)
    for _ in range(1500):
        text = "".join(rng.choice(_FRAGMENTS[fmt]) for _ in range(rng.randint(0, 14)))
        cuts = sorted(rng.sample(range(len(text) + 1), rng.randint(0, min(6, len(text) + 1))))
        _check(text, fmt, cuts, opened=rng.random() < 0.3)


def test_times_of_first_token_and_first_answer_token() -> None:
    times = iter([10.0, 11.0, 12.0, 13.0, 14.0])
    sp = ReasoningSplitter(THINK_TAGS, clock=times.__next__)
    assert sp.feed("<think>") == []  # a marker alone is the first token, not text
    (p,) = sp.feed("\nHmm")
    assert (p.kind, p.text, p.t) == ("reasoning", "Hmm", 11.0)
    assert sp.feed("</think>\n\n") == []
    (a,) = sp.feed("Four")
    assert (a.kind, a.t) == ("answer", 13.0)
    sp.finish()
    r = sp.result()
    assert (r.t_first, r.t_first_answer) == (10.0, 13.0)
    assert (r.reasoning_chunks, r.answer_chunks) == (1, 1)


def test_explicit_times_and_no_answer_when_cut_inside_thinking() -> None:
    sp = ReasoningSplitter(THINK_TAGS, in_reasoning=True)
    sp.feed("step one", t=1.5)
    sp.feed(" and two", t=2.5)
    sp.finish(t=3.0)
    r = sp.result()
    assert (r.reasoning, r.answer, r.unterminated) == ("step one and two", "", True)
    assert (r.t_first, r.t_first_answer) == (1.5, None)


def test_reasoning_field_deltas_then_content() -> None:
    sp = ReasoningSplitter(THINK_TAGS, clock=itertools.count().__next__)
    out = sp.feed(reasoning="Let me")
    out += sp.feed(reasoning=" think.\n")
    out += sp.feed("\n\nAnswer")
    out += sp.feed(" here.")
    out += sp.finish()
    assert [(p.kind, p.text) for p in out] == [
        ("reasoning", "Let me"),
        ("reasoning", " think."),
        ("answer", "Answer"),
        ("answer", " here."),
    ]
    r = sp.result()
    assert (r.reasoning, r.answer, r.t_first, r.t_first_answer) == (
        "Let me think.", "Answer here.", 0, 2,
    )  # fmt: skip


def test_reasoning_in_a_field_and_inline_counts_once() -> None:
    # llama-server's deepseek-legacy format keeps the tags in content and fills the field.
    sp = ReasoningSplitter(THINK_TAGS)
    sp.feed("<think>Same", reasoning="Same")
    sp.feed(" text</think>Done", reasoning=" text")
    sp.finish()
    assert (sp.result().reasoning, sp.result().answer) == ("Same text", "Done")


def test_a_server_that_parsed_a_block_the_prompt_opened() -> None:
    # The prompt ended in "<think>\n" but the server sends the reasoning in a field.
    sp = ReasoningSplitter(THINK_TAGS, in_reasoning=True)
    sp.feed(reasoning="Thought.")
    sp.feed("Answer.")
    sp.finish()
    assert (sp.result().reasoning, sp.result().answer) == ("Thought.", "Answer.")


def test_a_close_without_open_moves_the_answer_so_far() -> None:
    sp = ReasoningSplitter(THINK_TAGS, clock=itertools.count().__next__)
    first = sp.feed("Secretly thinking")
    assert [(p.kind, p.text) for p in first] == [("answer", "Secretly thinking")]
    (moved,) = sp.feed(".</think>\n\n")
    assert (moved.kind, moved.text, moved.moved) == ("reasoning", "Secretly thinking.", True)
    sp.feed("Answer")
    sp.finish()
    r = sp.result()
    assert (r.reasoning, r.answer, r.t_first_answer) == ("Secretly thinking.", "Answer", 2)


def test_without_a_format_text_is_answer_and_fields_still_count() -> None:
    sp = ReasoningSplitter(None)
    sp.feed(reasoning="r")
    sp.feed("<think>kept</think>")
    sp.finish()
    assert (sp.result().reasoning, sp.result().answer) == ("r", "<think>kept</think>")


def test_feed_after_finish_is_an_error() -> None:
    sp = ReasoningSplitter(THINK_TAGS)
    sp.finish()
    assert sp.finish() == []
    with pytest.raises(RuntimeError, match="after finish"):
        sp.feed("x")
