"""Surface features of the shown answers do not tell the models apart.

Both bundled models answer the same prompts for real; each battle pairs their answers to
one prompt. A classifier learns, on the other battles (leave one out), which single
surface feature (first or last character, length, markup, line breaks) best tells which
side is Gemma, and predicts the held-out battle. On the raw text it is nearly always
right (Gemma's answers begin with a line break, SmolLM's never do): the control shows
the test can fail. On the text raters see it must stay within MARGIN of chance.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from workbench.arena.shown import shown_answer
from workbench.backends.base import GenerationConfig
from workbench.models.registry import GEMMA_NAME, SMOLLM_NAME
from workbench.prompts import load_prompts

from .helpers import need_models

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

MARGIN = 0.25
"""Leave-one-out accuracy must stay below 0.5 + MARGIN. With 24 battles chance accuracy
has a standard deviation of about 0.1, and choosing the best of several features on the
training battles adds optimism; a tell such as a leading line break scores near 1."""

_MARKUP = re.compile(r"<[^<>\n]{1,64}>|\[[a-z@/]+\]")

FEATURES: dict[str, Callable[[str], float]] = {
    "first is space": lambda t: float(t[:1].isspace()),
    "last is space": lambda t: float(t[-1:].isspace()),
    "first is letter": lambda t: float(t[:1].isalpha()),
    "first is upper": lambda t: float(t[:1].isupper()),
    "last is punctuation": lambda t: float(bool(t) and not t[-1].isalnum() and not t[-1].isspace()),
    "last is letter": lambda t: float(t[-1:].isalpha()),
    "length": lambda t: float(len(t)),
    "markup": lambda t: float(bool(_MARKUP.search(t))),
    "line breaks": lambda t: float(t.count("\n")),
}


def _accuracy(pairs: list[tuple[str, str]]) -> float:
    """Leave-one-out accuracy of the best single-feature rule "the side whose feature is
    larger (or smaller) is Gemma". ``pairs`` are (gemma, smollm) texts; the sides of
    each battle are shuffled with a fixed seed. A tie on the feature scores a half."""
    rng = np.random.default_rng(0)
    flips = rng.random(len(pairs)) < 0.5
    # diff[i, f] = feature(A) - feature(B); label[i] = 1 when A is Gemma
    diffs, labels = [], []
    for (gemma, smol), flip in zip(pairs, flips, strict=True):
        a, b = (smol, gemma) if flip else (gemma, smol)
        diffs.append([f(a) - f(b) for f in FEATURES.values()])
        labels.append(0.0 if flip else 1.0)
    d, y = np.sign(np.array(diffs)), np.array(labels)

    def scores(rows: np.ndarray, sign: float) -> np.ndarray:
        guess = sign * d[rows]  # >0: A is Gemma, <0: B is, 0: a coin
        right = np.where(guess > 0, y[rows, None] == 1, y[rows, None] == 0).astype(float)
        return np.where(guess == 0, 0.5, right)

    correct = 0.0
    everyone = np.arange(len(pairs))
    for i in everyone:
        train = everyone[everyone != i]
        best = max(
            ((scores(train, s)[:, f].mean(), f, s) for f in range(d.shape[1]) for s in (1, -1)),
        )
        _, f, s = best
        correct += scores(np.array([i]), s)[0, f]
    return correct / len(pairs)


@pytest.fixture(scope="module")
def answers() -> list[tuple[str, str]]:
    """(gemma, smollm) raw answers to 12 prompts, twice each: 24 battles."""
    need_models()
    from workbench.runner import Runner

    prompts = [*load_prompts("reasoning")[:6], *load_prompts("instruction_following")[:6]]
    config = GenerationConfig(temperature=0.7, max_tokens=16, n_ctx=512, seed=7)
    with Runner([GEMMA_NAME, SMOLLM_NAME], config) as runner:
        frame = runner.run(prompts, reps=2)
    assert frame["error"].null_count() == frame.height, frame["error"].to_list()
    by = {(r["prompt_id"], r["rep"], r["model"]): r["response"] for r in frame.to_dicts()}
    return [
        (by[(p.id, rep, GEMMA_NAME)], by[(p.id, rep, SMOLLM_NAME)])
        for p in prompts
        for rep in range(2)
    ]


def test_raw_answers_give_the_models_away(answers: list[tuple[str, str]]) -> None:
    assert _accuracy(answers) >= 0.9  # the control: the classifier finds a real tell


def test_shown_answers_are_at_chance(answers: list[tuple[str, str]]) -> None:
    shown = [(shown_answer(g), shown_answer(s)) for g, s in answers]
    for text in (t for pair in shown for t in pair):
        assert text == text.strip() and not _MARKUP.search(text), repr(text)
    accuracy = _accuracy(shown)
    assert accuracy < 0.5 + MARGIN, f"surface features tell the models apart: {accuracy:.2f}"
