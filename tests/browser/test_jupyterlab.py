"""A real JupyterLab and a real Chromium: run 01_side_by_side, type a prompt, click Run,
see both columns fill with text and the figures render."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "01_side_by_side.ipynb"
TIMEOUT_MS = 600_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kernelspec(jupyter_path: Path) -> None:
    spec = jupyter_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
    )


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab on 127.0.0.1 serving a scratch root that holds a copy of the notebook."""
    pytest.importorskip("jupyterlab")
    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    data = tmp_path / "data"
    data.mkdir()
    _kernelspec(tmp_path / "jupyter")
    # No "get notified about Jupyter news?" toast over the screenshot.
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {
        **os.environ,
        "WORKBENCH_DATA": str(data),
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
    }
    token = secrets.token_hex(16)
    port = _free_port()
    log = (tmp_path / "jupyterlab.log").open("w")
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:  # containers and CI runners
        cmd.append("--allow-root")
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()
                    ) from None
                time.sleep(0.5)
        yield f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}", data
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


_ALL_CELLS_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
      .map(e => e.textContent.trim());
  return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p));
}"""

_BOTH_COLUMNS_HAVE_TEXT = """() => {
  const cols = [...document.querySelectorAll('.wb-compare .wb-column')];
  return cols.length === 2 && cols.every(c => {
    const t = c.querySelector('pre.wb-text');
    return t && !t.classList.contains('wb-placeholder') && !t.classList.contains('wb-error')
        && t.textContent.trim().length > 0;
  });
}"""

_FIGURES_RENDERED = """() =>
  document.querySelectorAll('.wb-compare .wb-figures .js-plotly-plot .main-svg').length >= 3
"""


def test_side_by_side_notebook_in_jupyterlab(
    lab: tuple[str, Path], tmp_path: Path, browser: Any
) -> None:
    url, data = lab
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(_ALL_CELLS_RAN, polling=500)
    errors = page.locator(".jp-OutputArea-output[data-mime-type*='error']")
    assert errors.count() == 0, errors.first.inner_text()

    panel = page.locator(".wb-compare")
    panel.scroll_into_view_if_needed()
    page.locator(".wb-max-tokens input").fill("12")
    page.locator(".wb-max-tokens input").press("Enter")
    page.locator(".wb-prompt textarea").fill("Name two fruits.")
    page.locator("button.wb-run").click()

    page.wait_for_function(_BOTH_COLUMNS_HAVE_TEXT, polling=200)
    page.wait_for_function(
        "() => /Done/.test(document.querySelector('.wb-compare .wb-status').textContent)",
        polling=500,
    )
    page.wait_for_function(_FIGURES_RENDERED, polling=500)
    assert "TTFT" in panel.locator(".wb-column").first.inner_text()
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "jupyterlab.png"))
    panel.screenshot(path=str(tmp_path / "compare-panel.png"))
    assert (tmp_path / "jupyterlab.png").stat().st_size > 10_000
    # The notebook's compare() cell stored 2 rows, the panel's run 2 more.
    import polars as pl

    runs = pl.read_parquet(sorted((data / "runs").glob("*.parquet")))
    assert runs.height == 4
    assert runs.filter(pl.col("max_tokens") == 12)["model"].n_unique() == 2
