"""``wb.compare(..., images=[...])``: checked up front, stored with the rows; a text-only
model says so in its row while a served vision model answers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.images import write_images
from tests.helpers.sse_server import ScriptedServer, chunk, sse, sse_headers
from workbench.errors import InputError
from workbench.images import ImageError
from workbench.runner import compare
from workbench.store import RunStore


@pytest.fixture()
def scripted() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    s.gets = {"/v1/models": {"object": "list", "data": [{"id": "vlm"}]}}

    def answer(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        sse(h, chunk("Teal."))
        sse(h, chunk(finish="stop"))
        sse(h, "[DONE]")

    s.script = answer
    yield s
    s.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_images(tmp_path_factory.mktemp("images"))


def test_compare_with_images_stores_what_was_sent(
    scripted: ScriptedServer, files: dict[str, Path], tmp_path: Path
) -> None:
    store = RunStore(tmp_path)
    df = compare(
        "What colour is it?",
        ["smollm2-135m-instruct", f"{scripted.base_url}#vlm"],
        images=[files["png"], files["webp"]],
        image_tokens=280,
        store=store,
    )
    stored = store.load()
    assert stored.height == 2
    shas = ",".join(hashlib.sha256(files[k].read_bytes()).hexdigest() for k in ("png", "webp"))
    for frame in (df, stored):
        rows = {r["model"]: r for r in frame.iter_rows(named=True)}
        text_only = rows["smollm2-135m-instruct"]
        served = rows[f"vlm@127.0.0.1:{scripted.port}/v1"]
        assert "a text-only model cannot take 2 images" in text_only["error"]
        assert served["response"] == "Teal." and served["error"] is None
        for r in (text_only, served):
            assert r["image_sha256"] == shas
            assert r["image_size"] == "32x20,18x12"
            assert r["image_bytes"] == files["png"].stat().st_size + files["webp"].stat().st_size
        assert text_only["image_budget"] == 280
        assert served["image_budget"] is None, "a server's budget is its own"
    ((_, body),) = scripted.requests
    assert len(body["messages"][-1]["content"]) == 3


def test_bad_images_and_misuse_fail_before_any_request(
    scripted: ScriptedServer, files: dict[str, Path]
) -> None:
    with pytest.raises(ImageError, match=r"cut\.png: a corrupt PNG image"):
        compare("What?", [f"{scripted.base_url}#vlm"], images=[files["truncated"]], store=False)
    with pytest.raises(InputError, match="not with a conversation"):
        compare(
            models=[f"{scripted.base_url}#vlm"],
            messages=[{"role": "user", "content": "Hi"}],
            images=[files["png"]],
            store=False,
        )
    with pytest.raises(InputError, match="image_tokens must be at least 1"):
        compare("What?", [f"{scripted.base_url}#vlm"], image_tokens=0, store=False)
    assert scripted.requests == []
