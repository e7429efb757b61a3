"""`workbench compare --image` as a user runs it: a real subprocess, a scripted
OpenAI-compatible server that records requests, and the bundled (text-only) SmolLM2."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.images import write_images
from tests.helpers.sse_server import ScriptedServer, chunk, sse, sse_headers


def _workbench(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKBENCH_DATA": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip


@pytest.fixture()
def scripted() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    s.gets = {"/v1/models": {"object": "list", "data": [{"id": "vlm"}]}}
    yield s
    s.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_images(tmp_path_factory.mktemp("images"))


def _answer(h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
    sse_headers(h)
    sse(h, chunk("A red square on teal."))
    sse(h, chunk(finish="stop"))
    sse(h, "[DONE]")


def test_the_image_goes_unchanged_and_the_row_describes_it(
    scripted: ScriptedServer, files: dict[str, Path], tmp_path: Path
) -> None:
    scripted.script = _answer
    png = files["png"]
    p = _workbench(
        "compare", "-p", "What is in the image?", "--image", str(png),
        "-m", f"{scripted.base_url}#vlm", "--json", "--no-store", data=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    ((_, body),) = scripted.requests
    text, image = body["messages"][-1]["content"]
    assert text == {"type": "text", "text": "What is in the image?"}
    assert image["type"] == "image_url"
    assert image["image_url"]["url"] == (
        "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
    )
    (row,) = json.loads(p.stdout)
    assert row["response"] == "A red square on teal." and row["error"] is None
    assert row["image_sha256"] == hashlib.sha256(png.read_bytes()).hexdigest()
    assert row["image_bytes"] == png.stat().st_size
    assert row["image_size"] == "32x20"


def test_several_images_and_the_table(
    scripted: ScriptedServer, files: dict[str, Path], tmp_path: Path
) -> None:
    scripted.script = _answer
    p = _workbench(
        "compare", "-p", "Compare them.", "--image", str(files["png"]),
        "--image", str(files["webp"]), "-m", f"{scripted.base_url}#vlm", "--no-store",
        data=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    ((_, body),) = scripted.requests
    parts = body["messages"][-1]["content"]
    assert [x["type"] for x in parts] == ["text", "image_url", "image_url"]
    assert parts[2]["image_url"]["url"].startswith("data:image/webp;base64,")
    assert "Prompt: Compare them. [+ 2 images: 32x20, 18x12]" in p.stdout


@pytest.mark.parametrize("kind", ["truncated", "gif", "missing"])
def test_a_bad_image_is_one_line_before_any_model_runs(
    scripted: ScriptedServer, files: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    scripted.script = _answer
    path = files[kind] if kind != "missing" else tmp_path / "nothing.png"
    p = _workbench(
        "compare", "-p", "What is in it?", "--image", str(path),
        "-m", f"{scripted.base_url}#vlm", data=tmp_path,
    )  # fmt: skip
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench compare: "), p.stderr
    assert path.name in lines[0]
    assert scripted.requests == [], "no model ran"
    assert not (tmp_path / "runs").exists(), "nothing stored"


def test_a_text_only_model_gets_an_error_row_and_the_rest_answer(
    scripted: ScriptedServer, files: dict[str, Path], tmp_path: Path
) -> None:
    scripted.script = _answer
    p = _workbench(
        "compare", "-p", "What is in the image?", "--image", str(files["jpeg"]),
        "-m", "smollm2-135m-instruct", "-m", f"{scripted.base_url}#vlm", "--json",
        data=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    text_only, served = json.loads(p.stdout)
    assert text_only["model"] == "smollm2-135m-instruct"
    assert text_only["finish_reason"] == "error" and "\n" not in text_only["error"]
    assert "a text-only model cannot take an image" in text_only["error"]
    assert text_only["image_size"] == "40x30", "the row still says which image it was"
    assert served["response"] == "A red square on teal." and served["error"] is None
    assert len(scripted.requests) == 1
