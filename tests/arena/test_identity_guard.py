"""Before voting, nothing a rater's browser can fetch names a model.

The test plays the browser: it fetches the page, Gradio's config, info and OpenAPI
endpoints and the assets the page links, then logs in and starts a battle through the
same queue protocol the page uses, keeping every byte of every event stream and every
response header. None of it may contain a model name, file name or path. After the vote
the same capture must show the names (so the scan can fail).
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from workbench.arena.app import build_app
from workbench.arena.battles import Arena
from workbench.arena.study import load_study

from .helpers import fake_runs, free_port, need_models, write_study

pytestmark = pytest.mark.slow


class Capture:
    """Everything fetched, as text (bodies and headers)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=60)
        self.texts: list[tuple[str, str]] = []

    def get(self, path: str) -> httpx.Response:
        r = self.http.get(path)
        self.texts.append((path, r.text))
        self.texts.append((f"{path} headers", json.dumps(dict(r.headers))))
        return r

    def event(self, fn_index: int, trigger: int, data: list[Any], session: str) -> list[Any]:
        """One queued event as the page sends it; returns the output data."""
        r = self.http.post(
            "/gradio_api/queue/join",
            json={
                "data": data,
                "fn_index": fn_index,
                "trigger_id": trigger,
                "session_hash": session,
                "event_data": None,
            },
        )
        self.texts.append(("join", r.text + json.dumps(dict(r.headers))))
        r.raise_for_status()
        output: list[Any] = []
        with self.http.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as s:
            self.texts.append(("stream headers", json.dumps(dict(s.headers))))
            for line in s.iter_lines():
                self.texts.append(("stream", line))
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    assert msg.get("success"), msg
                    output = msg["output"]["data"]
                    break
        return output

    def leaks(self, needles: list[str]) -> list[str]:
        found = []
        for where, text in self.texts:
            low = text.lower()
            found += [f"{n!r} in {where}" for n in needles if n.lower() in low]
        return found


def _battle_ids(db: Path) -> list[tuple[str]]:
    import sqlite3

    with sqlite3.connect(db) as c:
        return c.execute("SELECT battle_id FROM battles").fetchall()


def _ids(config: dict[str, Any], label: str) -> tuple[int, int]:
    """(fn_index, component id) of the button showing ``label``."""
    button = next(
        c["id"]
        for c in config["components"]
        if c.get("type") == "button" and c.get("props", {}).get("value") == label
    )
    for dep in config["dependencies"]:
        if [button, "click"] in [list(t) for t in dep["targets"]]:
            return int(dep["id"]), button
    raise AssertionError(f"no click handler for {label!r}")


def test_nothing_before_the_vote_names_a_model(tmp_path: Path, launched: list[object]) -> None:
    need_models()
    study = load_study(write_study(tmp_path, pool_only=True, runs_root=tmp_path))
    arena = Arena(study, runs=fake_runs(), seed=0)
    app = build_app(study, arena=arena)
    launched.append(app)
    port = free_port()
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True)

    needles: list[str] = []
    for ref in study.models:
        p = Path(ref.path)
        needles += [ref.name, ref.path, p.name, p.stem, str(p.parent)]
        info = ref.info()
        needles += [info.arch]  # gemma3, llama
    needles += ["gemma", "smollm", "base model"]  # the label of the pretrained Gemma too
    needles = sorted({n for n in needles if n})

    cap = Capture(f"http://127.0.0.1:{port}")
    page = cap.get("/").text
    config = cap.get("/config").json()
    for path in (
        "/gradio_api/info",
        "/gradio_api/info?all_endpoints=true",
        "/gradio_api/openapi.json",
    ):
        cap.get(path)
    assets = sorted(set(re.findall(r'(?:src|href)="\.?(/?assets/[^"]+)"', page)))
    assert assets, "the page links no assets?"
    for a in [*assets, "/manifest.json"]:
        cap.get("/" + a.lstrip("/"))

    session = uuid.uuid4().hex[:11]
    login_fn, login_btn = _ids(config, "Log in")
    out = cap.event(login_fn, login_btn, ["alice-secret-1"], session)
    assert "alice" in json.dumps(out)
    new_fn, new_btn = _ids(config, "New battle")
    out = cap.event(new_fn, new_btn, [None, None, ""], session)
    assert out[0] is None  # gr.State stays on the server: the page never holds the id
    (battle_id,) = [b for (b,) in _battle_ids(study.votes_db)]
    assert "Answer" in json.dumps(out), "the battle's answers were not captured"
    assert len(battle_id) >= 24 and battle_id.replace("-", "").replace("_", "").isalnum()
    assert study.models[0].name in repr(arena.store.get_battle(battle_id))

    assert cap.leaks(needles) == []

    # The reveal after the vote goes through the same capture: the scan does see names.
    vote_fn, vote_btn = _ids(config, "A is better")
    cap.event(vote_fn, vote_btn, [None, None, "clear"], session)
    assert cap.leaks(needles), "the scan found nothing even after the reveal"
    assert any(leak.startswith("'base model'") for leak in cap.leaks(needles))
