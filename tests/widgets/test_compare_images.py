"""The compare panel's image upload, without a screen: uploaded files go with the prompt
to every model (a scripted OpenAI-compatible server records them); a bad file is one line
in the status, and nothing runs."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ipywidgets")

from tests.helpers.images import write_images
from tests.helpers.sse_server import ScriptedServer, chunk, sse, sse_headers
from workbench.store import RunStore
from workbench.widgets import ComparePanel


@pytest.fixture()
def scripted() -> Iterator[ScriptedServer]:
    s = ScriptedServer()

    def answer(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        sse_headers(h)
        sse(h, chunk("Teal."))
        sse(h, chunk(finish="stop"))
        sse(h, "[DONE]")

    s.script = answer
    yield s
    s.close()


def _upload(path: Path) -> dict[str, Any]:
    """What ipywidgets' FileUpload holds for a file the browser sent."""
    data = path.read_bytes()
    return {"name": path.name, "type": "image/png", "size": len(data),
            "content": memoryview(data), "last_modified": datetime.now(UTC)}  # fmt: skip


def test_uploaded_images_go_with_the_prompt(scripted: ScriptedServer, tmp_path: Path) -> None:
    files = write_images(tmp_path / "img")
    panel = ComparePanel(models=[f"{scripted.base_url}#vlm"], store=RunStore(tmp_path / "d"))
    try:
        panel.prompt.value = "What colour?"
        panel.image_upload.value = (_upload(files["truncated"]),)
        assert panel.run() is False
        assert "cut.png: a corrupt PNG image" in panel.status.value
        assert scripted.requests == []

        panel.image_upload.value = (_upload(files["png"]), _upload(files["jpeg"]))
        assert panel.run() and panel.wait(60)
        ((_, body),) = scripted.requests
        parts = body["messages"][-1]["content"]
        assert [p["type"] for p in parts] == ["text", "image_url", "image_url"]
        url = parts[1]["image_url"]["url"]
        assert base64.b64decode(url.partition(",")[2]) == files["png"].read_bytes()
        (row,) = panel.frame.iter_rows(named=True)
        assert row["image_size"] == "32x20,40x30" and row["response"] == "Teal."
    finally:
        panel.close()
