"""Image prompts in a blind study: the pool keeps a picture's answers apart from the same
words without it, raters get the image with the battle, and (in headless Chromium) see it
above both answers."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.helpers.images import write_images
from workbench.arena.app import build_app
from workbench.arena.battles import Arena
from workbench.arena.study import Study, load_study
from workbench.errors import ArenaError
from workbench.images import load_image
from workbench.store import rows_to_frame

from .helpers import BUNDLED, GEN, free_port, need_models, write_study

TEXT = "What colour is the square?"


def _study(tmp_path: Path) -> tuple[Study, pl.DataFrame, str]:
    need_models()
    path = write_study(tmp_path, pool_only=True, runs_root=tmp_path, max_open=20)
    write_images(tmp_path / "pics")
    prompts = [
        {"id": "v-square", "category": "vision", "language": "en", "prompt": TEXT,
         "image": "pics/probe.png"},
        {"id": "t-square", "category": "vision", "language": "en", "prompt": TEXT},
    ]  # fmt: skip
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    sha = load_image(tmp_path / "pics" / "probe.png").sha256
    rows = []
    for pid, image, what in (("v-square", sha, "Seen"), ("t-square", None, "Unseen")):
        for m in BUNDLED:
            for i in range(3):
                rows.append({
                    "run_id": "fake", "row_id": uuid.uuid4().hex, "created_at": datetime.now(UTC),
                    "prompt_id": pid, "prompt": TEXT, "category": "vision", "language": "en",
                    "model": m, "temperature": GEN.temperature, "top_p": GEN.top_p,
                    "top_k": GEN.top_k, "max_tokens": GEN.max_tokens, "image_sha256": image,
                    "response": f"{what} answer {i}.", "finish_reason": "length",
                })  # fmt: skip
    return load_study(path), rows_to_frame(rows), sha


def test_image_prompts_keep_their_own_answers_and_bring_the_image(tmp_path: Path) -> None:
    study, runs, _ = _study(tmp_path)
    arena = Arena(study, runs=runs, seed=0)
    try:
        alice = arena.authenticate("alice-secret-1")
        url = load_image(tmp_path / "pics" / "probe.png").data_url()
        kinds = set()
        for _ in range(8):
            view = arena.new_battle(alice)
            shown = view.as_dict()
            for name in BUNDLED:
                assert name not in repr(shown)
            if view.images:
                assert shown["images"] == [url]
                assert view.answer_a.startswith("Seen") and view.answer_b.startswith("Seen")
                kinds.add("image")
            else:
                assert view.answer_a.startswith("Unseen") and view.answer_b.startswith("Unseen")
                kinds.add("text")
            arena.vote(alice, view.battle_id, "tie", None)
        assert kinds == {"image", "text"}
    finally:
        arena.close()


def test_a_battle_on_an_image_takes_no_follow_up(tmp_path: Path) -> None:
    """Earlier turns carry their text only: a follow-up would reach models that no longer
    see the picture, so it is refused in one line, before anything is generated."""
    need_models()
    _, runs, _ = _study(tmp_path)
    path = write_study(tmp_path, runs_root=tmp_path, max_open=20, extra_top="max_turns = 3")
    write_images(tmp_path / "pics")
    prompts = [{"id": "v-square", "category": "vision", "language": "en", "prompt": TEXT,
                "image": "pics/probe.png"}]  # fmt: skip
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    arena = Arena(load_study(path), runs=runs, seed=0)
    try:
        alice = arena.authenticate("alice-secret-1")
        view = arena.new_battle(alice)
        assert view.images and view.max_turns == 3
        with pytest.raises(ArenaError, match=r"^a battle on an image takes no follow-up"):
            arena.follow_up(alice, view.battle_id, "And its colour?")
        assert arena.vote(alice, view.battle_id, "A", None).choice == "A"
    finally:
        arena.close()


@pytest.mark.browser
@pytest.mark.slow
def test_raters_see_the_image_above_both_answers(tmp_path: Path, browser: Any) -> None:
    study, runs, _ = _study(tmp_path)
    from workbench.store import RunStore

    RunStore(tmp_path).append(runs)  # the study pools from runs_root
    app = build_app(study, seed=0)
    port = free_port()
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_label("Your token").fill("alice-secret-1")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("Logged in as").wait_for(timeout=30_000)
        image = page.locator("img.wb-prompt-image")
        store = app.arena.store
        for _ in range(8):
            # One battle per click, each waited for on the page (a click made while the
            # previous battle is pending would be dropped by Gradio).
            before = store.count_battles()
            page.get_by_role("button", name="New battle").click()
            deadline = time.monotonic() + 60
            while store.count_battles() == before:
                assert time.monotonic() < deadline, "no battle was started"
                time.sleep(0.05)
            newest = max(store.open_battles("alice"), key=lambda b: b.created_at or 0)
            page.wait_for_function(
                "([a, b]) => { const v = [...document.querySelectorAll('textarea')]"
                ".map(t => t.value); return v.includes(a) && v.includes(b); }",
                arg=[newest.answer_a, newest.answer_b],
                timeout=60_000,
            )
            if newest.prompt_id == "v-square":
                break
        assert newest.prompt_id == "v-square", "the image prompt was dealt"
        image.wait_for(state="visible", timeout=30_000)
        assert image.count() == 1, "the image prompt shows its picture"
        assert image.get_attribute("src", timeout=5_000).startswith("data:image/png;base64,")
        assert image.evaluate("el => el.complete && el.naturalWidth") == 32  # decoded
        box = image.bounding_box()
        answers = [t.bounding_box() for t in page.locator("textarea").all() if t.input_value()]
        assert box is not None and len(answers) >= 2
        assert all(a is not None and box["y"] + box["height"] <= a["y"] for a in answers)
        for name in BUNDLED:
            assert name not in page.content()
    finally:
        app.close()
        app.arena.close()
