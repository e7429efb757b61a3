"""What raters see of an answer: the same clean-up for every model, the raw text kept."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from workbench.arena.battles import AnswerPool, Arena
from workbench.arena.shown import shown_answer
from workbench.arena.study import load_study

from .helpers import BUNDLED, GEN, PROMPTS, fake_runs, need_models, write_study


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\n\nThe sky is blue.", "The sky is blue."),
        (" The sky is blue.  \n", "The sky is blue."),
        ("Blue.<end_of_turn>\n<start_of_turn>user\nMore?", "Blue."),
        ("Blue.<|im_end|><|im_start|>user", "Blue."),
        ("<start_of_image>Blue <b>sky</b>.", "Blue sky."),
        ("<table><tr><td>1</td></tr></table> done", "1 done"),
        ('<div class="x">Blue</div>', "Blue"),
        ("Blue\u200b sky\u00ad.\u202e", "Blue sky."),
        ("Blue\x07 sky\x1b.", "Blue sky."),
        ("Blue\r\nsky\tnow", "Blue\nsky now"),
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("a   \nb", "a\nb"),
        ("[multimodal]<unused12>Blue\ufffd", "Blue"),
        ("2 < 3 and 5 > 4", "2 < 3 and 5 > 4"),  # not a tag
        ("<eos>", ""),
        ("\n\n\n", ""),
    ],
)
def test_shown_answer(raw: str, shown: str) -> None:
    assert shown_answer(raw) == shown


def test_shown_text_never_starts_or_ends_with_whitespace() -> None:
    for raw in ["\n x", "x \n", "\u3000x\u2028", "\t<b> x </b>\n", "<s> x"]:
        out = shown_answer(raw)
        assert out == out.strip() and out == "x"


def test_pool_shows_clean_text_and_keeps_the_raw(tmp_path: Path) -> None:
    need_models()
    raw = "\n\n<start_of_image>Answer {i} to: {prompt}<end_of_turn>tail"
    runs = pl.concat([fake_runs(models=[BUNDLED[0]], text=raw), fake_runs(models=[BUNDLED[1]])])
    pool = AnswerPool.from_runs(runs, GEN, list(BUNDLED))
    first = pool.answers(PROMPTS[0]["prompt"], BUNDLED[0])[0]
    assert first.text.startswith("Answer") and first.text.endswith(PROMPTS[0]["prompt"])
    assert first.raw.startswith("\n\n<start_of_image>")

    study = load_study(write_study(tmp_path, pool_only=True, runs_root=tmp_path))
    arena = Arena(study, runs=runs, seed=1)
    alice = arena.authenticate("alice-secret-1")
    view = arena.new_battle(alice)
    record = arena.store.get_battle(view.battle_id)
    assert record is not None
    gemma_side = "a" if record.model_a == BUNDLED[0] else "b"
    shown = getattr(record, f"answer_{gemma_side}")
    kept = getattr(record, f"raw_{gemma_side}")
    assert shown == getattr(view, f"answer_{gemma_side}") and "<" not in shown
    assert kept.startswith("\n\n<start_of_image>") and kept.endswith("<end_of_turn>tail")
    arena.close()


@pytest.mark.parametrize(
    ("finish", "error"),
    [("interrupted", "stream cut"), ("cancelled", None), ("error", "boom"), ("stop", "late")],
)
def test_cut_or_failed_rows_are_never_pooled(finish: str, error: str | None) -> None:
    """A row cut short (a served stream that ended without finish_reason is stored as
    "interrupted" with an error) or failed never becomes a battle answer."""
    runs = fake_runs(per=1).with_columns(
        pl.lit(finish).alias("finish_reason"), pl.lit(error, dtype=pl.String()).alias("error")
    )
    assert len(AnswerPool.from_runs(runs, GEN, list(BUNDLED))) == 0
    ok = fake_runs(per=1)
    assert len(AnswerPool.from_runs(pl.concat([runs, ok]), GEN, list(BUNDLED))) == ok.height


def test_answers_empty_once_cleaned_are_not_pooled() -> None:
    runs = fake_runs(per=1, text="\n\n<start_of_image> <eos>")
    assert len(AnswerPool.from_runs(runs, GEN, list(BUNDLED))) == 0
