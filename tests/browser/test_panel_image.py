"""The compare panel's image upload in a real JupyterLab and Chromium: a picture chosen in
the browser goes with the prompt to every model (the bundled models are text-only, so
each column ends with the one-line refusal and the rows record the image)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_jupyterlab import NOTEBOOK, _jupyterlab, _run_all
from tests.helpers.images import write_images

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1200)]

_BOTH_COLUMNS_REFUSED = """() => {
  const cols = [...document.querySelectorAll('.wb-compare .wb-column')];
  return cols.length === 2 && cols.every(c => /cannot take an image/.test(c.textContent));
}"""


def test_an_uploaded_image_reaches_every_model(tmp_path: Path, browser: Any) -> None:
    picture = write_images(tmp_path / "pics")["png"]
    with _jupyterlab(tmp_path) as (base, token, data):
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        _run_all(page, f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}")
        panel = page.locator(".wb-compare")
        panel.scroll_into_view_if_needed()
        try:
            with page.expect_file_chooser(timeout=60_000) as chooser:
                panel.locator(".wb-image").click()  # as a user picks the file
            chooser.value.set_files(str(picture))
            page.wait_for_function(
                "() => /\\(1\\)/.test(document.querySelector('.wb-compare .wb-image').textContent)",
                timeout=60_000,
            )
            page.locator(".wb-prompt textarea").fill("What is in the image?")
            page.locator("button.wb-run").click()
            page.wait_for_function(_BOTH_COLUMNS_REFUSED, polling=200, timeout=120_000)
            page.wait_for_function(
                "() => /Done/.test(document.querySelector('.wb-compare .wb-status').textContent)",
                polling=500,
                timeout=120_000,
            )
        except Exception:
            page.screenshot(path=str(tmp_path / "panel-image.png"))
            print(panel.inner_html()[:3000])
            raise
    import polars as pl

    runs = pl.read_parquet(sorted((data / "runs").glob("*.parquet")))
    imaged = runs.filter(pl.col("image_size").is_not_null())
    assert imaged.height == 2 and set(imaged["image_size"]) == {"32x20"}
    assert all("text-only model" in e for e in imaged["error"])
