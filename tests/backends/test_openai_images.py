"""Image prompts to a served model: OpenAI image parts, the bytes unchanged, recorded by a
scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.images import write_images
from tests.helpers.sse_server import ScriptedServer, chunk, json_error, sse, sse_headers
from workbench.backends.base import Done, Failed, GenerationConfig, Prompt
from workbench.backends.openai_http import OpenAIBackend
from workbench.images import load_images


@pytest.fixture()
def scripted() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_images(tmp_path_factory.mktemp("images"))


def _answer(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
    sse_headers(h)
    sse(h, chunk("A red square."))
    sse(h, chunk(finish="stop"))
    sse(h, "[DONE]")


def test_images_go_as_data_url_parts_beside_the_text(
    scripted: ScriptedServer, files: dict[str, Path]
) -> None:
    scripted.script = _answer
    images = load_images([files["png"], files["jpeg"]])
    prompt = Prompt("What is in the image?", images=images)
    events = list(OpenAIBackend(scripted.base_url, "vlm").stream(prompt, GenerationConfig()))
    assert isinstance(events[-1], Done) and events[-1].completion.text == "A red square."
    _, body = scripted.requests[0]
    content = body["messages"][-1]["content"]
    assert body["messages"][-1]["role"] == "user"
    assert content[0] == {"type": "text", "text": "What is in the image?"}
    assert [part["type"] for part in content[1:]] == ["image_url", "image_url"]
    for part, path, mime in zip(content[1:], (files["png"], files["jpeg"]),
                                ("image/png", "image/jpeg"), strict=True):  # fmt: skip
        head, _, b64 = part["image_url"]["url"].partition(",")
        assert head == f"data:{mime};base64"
        assert base64.b64decode(b64) == path.read_bytes()


def test_a_text_prompt_stays_a_string(scripted: ScriptedServer) -> None:
    scripted.script = _answer
    list(OpenAIBackend(scripted.base_url, "vlm").stream(Prompt("Hi"), GenerationConfig()))
    _, body = scripted.requests[0]
    assert body["messages"][-1] == {"role": "user", "content": "Hi"}


def test_a_server_without_vision_fails_in_one_line(
    scripted: ScriptedServer, files: dict[str, Path]
) -> None:
    """llama-server without --mmproj refuses image parts with HTTP 500 and this message."""

    def refuse(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        json_error(h, 500, "image input is not supported - hint: if this is unexpected, "
                   "you may need to provide the mmproj")  # fmt: skip

    scripted.script = refuse
    prompt = Prompt("What is in the image?", images=load_images([files["png"]]))
    events = list(OpenAIBackend(scripted.base_url, "txt").stream(prompt, GenerationConfig()))
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert "\n" not in events[0].message
    assert "image input is not supported" in events[0].message
