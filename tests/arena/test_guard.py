"""The identity guard: a table of names it must catch and ordinary words it must not flag."""

from __future__ import annotations

import pytest

from workbench.arena.guard import fold_words, identity_terms

CAUGHT = [
    ("I am Gemma, a model trained by Google DeepMind.", ["Gemma", "Google", "DeepMind"]),
    ("As Qwen2.5 from Alibaba Cloud, I can help.", ["Qwen", "Alibaba"]),
    ("I'm ChatGLM, made by Zhipu AI.", ["GLM", "Zhipu"]),
    ("I am a LLaMA model by Meta AI.", ["Llama", "Meta"]),
    ("Hi! I'm SmolLM, built by Hugging Face.", ["SmolLM", "Hugging Face"]),
    ("I am ChatGPT by OpenAI.", ["OpenAI", "GPT"]),
    # the misses of the old guard (issue 15)
    ("Made by Hugging-Face.", ["Hugging Face"]),
    ("Published by HuggingFaceTB on the hub.", ["Hugging Face"]),
    ("A GoogleAI model.", ["Google"]),
    ("I am SmolLMv2.", ["SmolLM"]),
    ("I am smol-lm, a small model.", ["SmolLM"]),
    ("I am Smol LM.", ["SmolLM"]),
    ("I am smol_lm2.", ["SmolLM"]),
    ("I am G e m m a.", ["Gemma"]),
    ("I am G-e-m-m-a.", ["Gemma"]),
    ("I am Gem\u200bma.", ["Gemma"]),  # zero-width space
    ("I am Gem\u00adma.", ["Gemma"]),  # soft hyphen
    ("I am Gem\u2060ma.", ["Gemma"]),  # word joiner
    ("I am G\u0435mma.", ["Gemma"]),  # Cyrillic e
    ("I am \u0262\u1d07\u1d0d\u1d0d\u1d00.", ["Gemma"]),  # Latin small capitals
    ("I am \uff27\uff45\uff4d\uff4d\uff41.", ["Gemma"]),  # full-width letters (NFKC)
    ("I am G\u00e9mma.", ["Gemma"]),  # an accent
    ("I am \U0001d5da\U0001d5f2\U0001d5fa\U0001d5fa\U0001d5ee.", ["Gemma"]),  # math sans-serif
    ("Deep Mind and deep-seek.", ["DeepMind", "DeepSeek"]),
    ("GPT-4o and gpt4 are by Open AI.", ["OpenAI", "GPT"]),
    ("Phi-3.5 by Microsoft.", ["Phi", "Microsoft"]),
    ("Command R+ by Cohere; Aya too.", ["Cohere"]),
    ("Ernie Bot by Baidu.", ["Baidu"]),
    ("OLMo by AllenAI.", ["OLMo"]),
    ("Google's model.", ["Google"]),
]

NOT_FLAGGED = [
    "The answer is 4. Metadata and metallic objects are fine.",
    "Paris is the capital of France.",
    "A papaya is a fruit.",  # "aya" inside a word: not Cohere
    "Maya and Bernie met at Olmos.",  # not Cohere, Baidu (Ernie) or OLMo
    "Abacadimaya",  # live false positive of the old guard
    "The phi ratio is about 1.618.",  # phi without a version
    "Googly eyes and a gemstone.",
    "Falconry? No: a falcon-free answer.",  # (the word itself would match: Falcon)
]


@pytest.mark.parametrize(("text", "expected"), CAUGHT)
def test_names_are_caught(text: str, expected: list[str]) -> None:
    assert identity_terms(text) == expected


@pytest.mark.parametrize("text", NOT_FLAGGED[:-1])
def test_ordinary_words_are_not_flagged(text: str) -> None:
    assert identity_terms(text) == []


def test_a_whole_word_still_matches() -> None:
    assert identity_terms(NOT_FLAGGED[-1]) == ["Falcon"]


def test_study_model_names_are_whole_words() -> None:
    names = ["smollm2-135m-instruct", "gemma-3-270m", "mymodel-7b@127.0.0.1:9/v1"]
    assert identity_terms("I am Smollm2-135M-instruct", names) == [
        "SmolLM",
        "smollm2-135m-instruct",
    ]
    assert identity_terms("served as mymodel-7b here", names) == ["mymodel-7b"]
    assert identity_terms("my model, mymodel", names) == ["mymodel-7b"]
    assert identity_terms("version v1 of the answer", names) == []  # not the URL's tail
    assert identity_terms("mymodelling", names) == []


def test_folding() -> None:
    assert fold_words("Hugging-Face\u00ad TB, S.m.o.l") == ["hugging", "face", "tb", "smol"]
