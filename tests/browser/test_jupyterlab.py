"""A real JupyterLab and a real Chromium.

- 01_side_by_side: run it, type a prompt, click Run, see both columns fill with text and
  the figures render.
- Every notebook, as on mybinder.org: the server under a hub prefix
  (``$JUPYTERHUB_SERVICE_PREFIX``, with jupyter-server-proxy) and in the dark theme.
  Run All, no error output, every Plotly figure on a transparent background with light
  text; 04's inline arena panel is reached through the Jupyter server's proxy, and a
  rater logs in and gets a battle there.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "01_side_by_side.ipynb"
TIMEOUT_MS = 600_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _kernelspec(jupyter_path: Path) -> None:
    spec = jupyter_path / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
    )


def _setting(settings_dir: Path, plugin: str, values: dict[str, Any]) -> None:
    """Write one plugin's JupyterLab user settings (``@jupyterlab/x-extension:plugin``)."""
    package, name = plugin.split(":")
    path = settings_dir / package / f"{name}.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


@contextmanager
def _jupyterlab(
    tmp_path: Path, *, dark: bool = False, hub_prefix: str | None = None
) -> Iterator[tuple[str, str, Path]]:
    """JupyterLab on 127.0.0.1 serving a scratch root with a copy of the notebooks (and
    the data files they read by relative path). Yields the server's URL (with its base
    URL), the token, and the data directory the kernels write to.

    ``hub_prefix`` emulates JupyterHub / mybinder.org: the server's base URL, also set
    as $JUPYTERHUB_SERVICE_PREFIX for it and its kernels."""
    pytest.importorskip("jupyterlab")
    root = tmp_path / "root"
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".*"))
    shutil.copytree(ROOT / "data" / "gpu", root / "data" / "gpu")
    data = tmp_path / "data"
    data.mkdir()
    _kernelspec(tmp_path / "jupyter")
    settings = tmp_path / "lab-settings"
    # No "get notified about Jupyter news?" toast over the screenshot.
    _setting(settings, "@jupyterlab/apputils-extension:notification", {"fetchNews": "false"})
    # Every cell in the page, so that every output can be inspected.
    _setting(settings, "@jupyterlab/notebook-extension:tracker", {"windowingMode": "none"})
    if dark:
        _setting(settings, "@jupyterlab/apputils-extension:themes", {"theme": "JupyterLab Dark"})
    base_url = hub_prefix or "/"
    env = {
        **os.environ,
        "WORKBENCH_DATA": str(data),
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
    }
    env.pop("JUPYTERHUB_SERVICE_PREFIX", None)
    if hub_prefix:
        env["JUPYTERHUB_SERVICE_PREFIX"] = hub_prefix
    token = secrets.token_hex(16)
    port = free_port()
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
        f"--ServerApp.base_url={base_url}",
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
    base = f"http://127.0.0.1:{port}{base_url.rstrip('/')}"
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
        yield base, token, data
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab (light theme, no prefix) with 01_side_by_side open."""
    with _jupyterlab(tmp_path) as (base, token, data):
        yield f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}", data


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


def _run_all(page: Any, url: str) -> None:
    """Open a notebook, Run All, wait for every cell, and find no error output."""
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


def test_side_by_side_notebook_in_jupyterlab(
    lab: tuple[str, Path], tmp_path: Path, browser: Any
) -> None:
    url, data = lab
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    _run_all(page, url)

    panel = page.locator(".wb-compare")
    panel.scroll_into_view_if_needed()
    page.locator(".wb-max-tokens input").fill("12")
    page.locator(".wb-max-tokens input").press("Enter")
    page.locator(".wb-prompt textarea").fill("Name two fruits.")
    page.locator("button.wb-run").click()
    # Models answer one after another: the second column says so until its turn.
    page.wait_for_function(
        "() => /queued/.test(document.querySelectorAll('.wb-compare .wb-column')[1]"
        "?.textContent || '')",
        polling=100,
    )

    page.wait_for_function(_BOTH_COLUMNS_HAVE_TEXT, polling=200)
    page.wait_for_function(
        "() => /Done/.test(document.querySelector('.wb-compare .wb-status').textContent)",
        polling=500,
    )
    page.wait_for_function(_FIGURES_RENDERED, polling=500)
    assert "TTFT" in panel.locator(".wb-column").first.inner_text()
    # The history's table is the workbench's own, not Polars' HTML repr.
    assert page.locator(".wb-history-table table.wb-runs-table").count() == 1
    assert "null" not in page.locator(".wb-history-table").inner_text()
    # Light theme: figures on a transparent background with dark text.
    plots = page.evaluate(_PLOTS)
    assert plots and all(p and p["background"] in _CLEAR for p in plots), plots
    assert all(p["text"] and _luminance(p["text"]) < 0.4 for p in plots), plots
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "jupyterlab.png"))
    panel.screenshot(path=str(tmp_path / "compare-panel.png"))
    assert (tmp_path / "jupyterlab.png").stat().st_size > 10_000
    # Chat mode: two turns; each column shows its model's own conversation.
    page.locator(".wb-mode button", has_text="Chat").click()
    for n, text in enumerate(("Name a fruit.", "Another one?"), start=1):
        page.locator(".wb-prompt textarea").fill(text)
        page.locator("button.wb-run").click()
        # This turn's columns both hold an answer, and the run says it is done.
        page.wait_for_function(
            f"n => ({_BOTH_COLUMNS_HAVE_TEXT})()"
            " && [...document.querySelectorAll('.wb-compare .wb-turn')]"
            "      .every(e => e.textContent === `turn ${n}`)"
            " && /Done/.test(document.querySelector('.wb-compare .wb-status').textContent)",
            arg=n,
            polling=200,
        )
    columns = panel.locator(".wb-column")
    assert columns.count() == 2
    for i in range(2):
        shown = columns.nth(i).locator(".wb-column-history").inner_text()
        assert shown.index("Name a fruit.") < shown.index("Another one?"), shown
    headers = [columns.nth(i).locator(".wb-column-header").inner_text() for i in range(2)]
    assert sum("base model" in h for h in headers) == 1, headers  # Gemma 3 270M
    assert page.locator("button.wb-new-chat").is_enabled()
    panel.screenshot(path=str(tmp_path / "compare-chat.png"))
    # The notebook stored 2 rows (compare) and 4 (its two-turn conversation); the panel 2
    # (one prompt) and 4 (two chat turns).
    import polars as pl

    runs = pl.read_parquet(sorted((data / "runs").glob("*.parquet")))
    assert runs.height == 12
    assert runs.filter(pl.col("max_tokens") == 12)["model"].n_unique() == 2
    chats = runs.filter(pl.col("conversation_id").is_not_null())
    assert chats["conversation_id"].n_unique() == 2 and chats.height == 8


_PLOTS = """() => [...document.querySelectorAll('.jp-RenderedPlotly')].map(r => {
  const svg = r.querySelector('.main-svg');
  const text = r.querySelector('.gtitle') || r.querySelector('.xtick text');
  return svg && {
    background: getComputedStyle(svg).backgroundColor,
    text: text ? getComputedStyle(text).fill : null,
  };
})"""


_CLEAR = ("rgba(0, 0, 0, 0)", "transparent")


def _luminance(css: str) -> float:
    r, g, b = (int(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
HUB_PREFIX = "/user/visitor/"


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", NOTEBOOKS, ids=[n.removesuffix(".ipynb") for n in NOTEBOOKS])
def test_every_notebook_runs_in_dark_jupyterlab_behind_a_hub_prefix(
    name: str, tmp_path: Path, browser: Any
) -> None:
    with _jupyterlab(tmp_path, dark=True, hub_prefix=HUB_PREFIX) as (base, token, _data):
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        _run_all(page, f"{base}/lab/tree/notebooks/{name}?token={token}")
        assert page.evaluate("() => document.body.dataset.jpThemeLight") == "false"

        if name.startswith("04"):
            _arena_through_the_proxy(page)
            return
        page.wait_for_function(
            "() => { const r = [...document.querySelectorAll('.jp-RenderedPlotly')];"
            " return r.length > 0 && r.every(e => e.querySelector('.main-svg')); }",
            polling=500,
        )
        plots = page.evaluate(_PLOTS)
        assert plots and all(plots), plots
        for plot in plots:
            # The notebook's dark background shows through; the text is light on it.
            assert plot["background"] in _CLEAR, plot
            assert plot["text"] and _luminance(plot["text"]) > 0.6, plot
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def _arena_through_the_proxy(page: Any) -> None:
    """04's panel: an iframe on the Jupyter server's proxy path, in which a rater logs
    in and gets a battle (Gradio's queue events pass the proxy too)."""
    iframe = page.locator(".wb-inline-app iframe")
    src = iframe.get_attribute("src")
    assert src and src.startswith(f"{HUB_PREFIX}proxy/"), src
    link = page.locator(".wb-inline-app a").get_attribute("href")
    assert link == src
    frame = page.frame_locator(".wb-inline-app iframe")
    frame.get_by_label("Your token").fill("demo-token")
    frame.get_by_role("button", name="Log in").click()
    frame.get_by_role("button", name="New battle").click()
    answer = frame.get_by_label("Answer A")
    page.wait_for_function(
        "([sel]) => { const f = document.querySelector(sel);"
        " const t = f && f.contentDocument && f.contentDocument.querySelectorAll('textarea');"
        " return t && [...t].some(e => e.value.trim().length > 0); }",
        arg=[".wb-inline-app iframe"],
        polling=500,
    )
    assert answer.count() == 1
