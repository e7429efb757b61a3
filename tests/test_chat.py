"""Rows say how each model was prompted and sampled; conversations are checked up front.

Real parts: the two bundled models (SmolLM2-135M-Instruct has a chat template, Gemma 3
270M is the pretrained base model without one) and a tiny fixture GGUF carrying the
``general.sampling.*`` keys llama.cpp's converter writes from a model card.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from workbench.backends.base import WORKBENCH_SAMPLING, GenerationConfig, Prompt
from workbench.chat import completion_text, load_messages, parse_messages, request_messages
from workbench.errors import InputError
from workbench.gguf import read_model_info
from workbench.runner import ResponseFinished, Runner
from workbench.testing.fixtures import write_fixture
from workbench.testing.templates import set_key

CFG = GenerationConfig(temperature=0.0, seed=1, max_tokens=4, n_ctx=512)


@pytest.mark.slow
def test_base_and_chat_models_say_how_they_were_prompted(bundled: list[str]) -> None:
    with Runner(bundled, CFG) as runner:
        frame = runner.run(["Name a fruit."])
    rows = {r["model"]: r for r in frame.to_dicts()}
    gemma, smol = rows["gemma-3-270m"], rows["smollm2-135m-instruct"]
    assert gemma["error"] is None and smol["error"] is None
    assert gemma["prompt_mode"] == "completion" and smol["prompt_mode"] == "chat"
    for r in (gemma, smol):
        assert r["thinking"] == "default" and r["turn"] == 1
        assert r["conversation_id"] is None and r["history"] is None
        assert r["reasoning"] == "" and r["response"]
        # Temperature was set; the rest came from workbench (no GGUF keys here).
        unset = ("top_p", "top_k", "min_p", "repeat_penalty")
        assert json.loads(r["sampling_defaults"]) == dict.fromkeys(unset, "workbench")
        assert (r["temperature"], r["top_p"], r["top_k"]) == (0.0, 0.95, 40)
        assert (r["min_p"], r["repeat_penalty"]) == (0.05, 1.0)
    # A blind study with the same settings finds these answers; one with others does not.
    from workbench.arena.battles import AnswerPool

    assert len(AnswerPool.from_runs(frame, CFG, bundled)) == 2
    assert len(AnswerPool.from_runs(frame, replace(CFG, top_p=0.5), bundled)) == 0


def test_the_models_table_explains_its_chat_column() -> None:
    from workbench.cli.models import format_table, model_rows

    rows = [r for r in model_rows() if r["source"] == "bundled"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["gemma-3-270m"]["prompt_mode"] == "completion"
    assert by_name["smollm2-135m-instruct"]["prompt_mode"] == "chat"
    lines = format_table(rows).splitlines()
    gemma_line = next(ln for ln in lines if ln.startswith("gemma-3-270m"))
    smol_line = next(ln for ln in lines if ln.startswith("smollm2"))
    assert " base " in gemma_line and " yes " in smol_line
    legend = " ".join(lines[lines.index("") + 1 :])
    assert legend.startswith("CHAT: yes = ") and "base model" in legend
    assert 'prompt_mode "completion"' in legend


@pytest.fixture(scope="module")
def sampled_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama fixture whose GGUF recommends temperature 0.25 and top_k 7."""
    path = write_fixture("llama", tmp_path_factory.mktemp("sampling") / "sampled.gguf")
    set_key(path, "general.sampling.temp", 0.25)
    return set_key(path, "general.sampling.top_k", 7)


@pytest.mark.slow
def test_gguf_sampling_keys_are_the_defaults(sampled_model: Path) -> None:
    info = read_model_info(sampled_model)
    assert info.recommended_sampling == {"temperature": 0.25, "top_k": 7}
    unset = GenerationConfig(max_tokens=3, seed=5, n_ctx=256)
    with Runner([str(sampled_model)], unset) as runner:
        row = runner.run(["Hello"]).row(0, named=True)
        events = list(
            runner.stream_one(
                runner.model_names[0],
                Prompt("Hello"),
                config=GenerationConfig(temperature=0.9, top_k=3, max_tokens=3, n_ctx=256),
            )
        )
    assert row["error"] is None, row["error"]
    assert (row["temperature"], row["top_p"], row["top_k"]) == (
        0.25,
        WORKBENCH_SAMPLING["top_p"],
        7,
    )
    assert json.loads(row["sampling_defaults"]) == {
        "temperature": "gguf",
        "top_p": "workbench",
        "top_k": "gguf",
        "min_p": "workbench",
        "repeat_penalty": "workbench",
    }
    finished = events[-1]
    assert isinstance(finished, ResponseFinished)
    set_row = finished.row
    assert (set_row["temperature"], set_row["top_k"]) == (0.9, 3)
    assert json.loads(set_row["sampling_defaults"]) == {
        "top_p": "workbench",
        "min_p": "workbench",
        "repeat_penalty": "workbench",
    }


def test_a_thinking_setting_is_on_off_or_the_default() -> None:
    assert GenerationConfig(thinking="off").thinking == "off"
    with pytest.raises(InputError, match="thinking must be 'on', 'off' or None"):
        GenerationConfig(thinking="maybe")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- messages


def test_messages_are_checked_and_the_system_prompt_split_off() -> None:
    parsed = parse_messages(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Name a river."},
        ]
    )
    assert parsed.system == "Be brief." and parsed.pending
    assert [m.role for m in parsed.turns] == ["user", "assistant", "user"]
    bad = {
        "expected a list": "hello",
        r"messages\[0\]: role must be one of": [{"role": "tool", "content": "x"}],
        r"messages\[1\]: a system message may only come first": [
            {"role": "user", "content": "a"},
            {"role": "system", "content": "b"},
        ],
        r"messages\[1\]: expected a assistant message": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
        ],
        r"messages\[0\]: expected a user message": [{"role": "assistant", "content": "a"}],
        r"messages\[0\]: content must be a string": [{"role": "user", "content": ["a"]}],
        r"messages\[0\]: unknown key\(s\) name": [{"role": "user", "content": "a", "name": "x"}],
        r"messages\[0\]: the user message is empty": [{"role": "user", "content": "  "}],
    }
    for match, items in bad.items():
        with pytest.raises(InputError, match=match):
            parse_messages(items)


def test_a_messages_file_is_read_or_refused_in_one_line(tmp_path: Path) -> None:
    good = tmp_path / "conv.json"
    good.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}]}))
    assert load_messages(good).turns[0].content == "Hi"
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON"):
        load_messages(broken)
    with pytest.raises(InputError, match="cannot read"):
        load_messages(tmp_path / "missing.json")
    only_system = tmp_path / "system.json"
    only_system.write_text(json.dumps([{"role": "system", "content": "x"}]))
    with pytest.raises(InputError, match="no user message"):
        load_messages(only_system)


def test_what_a_chat_and_a_base_model_are_sent() -> None:
    turns = parse_messages(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Name a river."},
        ]
    ).turns
    prompt = Prompt(turns[-1].content, history=turns[:-1])
    assert prompt.turn_number == 2 and Prompt("x", turn=5).turn_number == 5
    assert request_messages(prompt, "Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Name a river."},
    ]
    assert completion_text(Prompt("Once upon"), None) == "Once upon"
    assert completion_text(Prompt("Once upon"), "Story:") == "Story:\n\nOnce upon"
    assert (
        completion_text(prompt, None)
        == "User: Hi\nAssistant: Hello.\nUser: Name a river.\nAssistant:"
    )
