"""launch_inline: a Gradio app shown in a notebook, reached directly on this machine or
through a real Jupyter server's proxy (jupyter-server-proxy) under a hub prefix, as on
mybinder.org."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.servers import free_port

gr = pytest.importorskip("gradio")

from workbench.widgets import launch_inline  # noqa: E402
from workbench.widgets.embed import jupyter_base_url  # noqa: E402


def _app() -> Any:
    with gr.Blocks(analytics_enabled=False) as app:
        name = gr.Textbox(label="name")
        out = gr.Textbox(label="greeting")
        name.submit(lambda s: f"hello {s}", name, out)
    return app


def test_base_url_comes_from_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    assert jupyter_base_url() is None
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada")
    assert jupyter_base_url() == "/user/ada/"
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/")
    assert jupyter_base_url() == "/"


def test_without_a_hub_the_browser_loads_the_local_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    shown = launch_inline(_app(), height=300)
    try:
        assert not shown.proxied and shown.url == shown.local_url
        assert shown.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(shown.url, timeout=30) as r:
            assert r.status == 200
        page = shown._repr_html_()
        assert f"src='{shown.url}'" in page and "height='300'" in page
        assert f"href='{shown.url}'" in page  # the same address, in a tab of its own
    finally:
        shown.close()


@pytest.fixture
def jupyter_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real Jupyter server under the base URL /user/visitor/ (as JupyterHub runs one),
    with jupyter-server-proxy; yields its origin and token."""
    pytest.importorskip("jupyter_server_proxy")
    token, port = secrets.token_hex(8), free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyter_server",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.base_url=/user/visitor/",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp_path}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                url = f"{origin}/user/visitor/api/status?token={token}"
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "server.log").read_text()) from None
                time.sleep(0.5)
        yield origin, token
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.mark.slow
def test_under_a_hub_the_app_answers_through_the_jupyter_proxy(
    jupyter_server: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    origin, token = jupyter_server
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/visitor/")
    shown = launch_inline(_app())
    try:
        port = shown.local_url.rstrip("/").rsplit(":", 1)[1]
        assert shown.proxied and shown.url == f"/user/visitor/proxy/{port}/"
        # What the visitor's browser does: ask the Jupyter server, not 127.0.0.1:PORT.
        with urllib.request.urlopen(f"{origin}{shown.url}?token={token}", timeout=60) as r:
            assert r.status == 200
            assert "gradio" in r.read().decode().lower()
        # Gradio writes its links under the proxy path, so its assets and API load too.
        with urllib.request.urlopen(f"{origin}{shown.url}config?token={token}", timeout=60) as r:
            config = json.loads(r.read())
        assert config["root"] == f"{origin}{shown.url}".rstrip("/")
        api = f"{origin}{shown.url}gradio_api/info?token={token}"
        with urllib.request.urlopen(api, timeout=60) as r:
            assert r.status == 200
    finally:
        shown.close()
