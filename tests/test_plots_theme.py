"""Figures follow JupyterLab's theme: the setting is read as JupyterLab reads it (user
settings over installation overrides over the default), and every figure carries the
workbench template with transparent backgrounds."""

from __future__ import annotations

import json
from pathlib import Path

import plotly.io as pio
import polars as pl
import pytest

from workbench.plots.theme import jupyterlab_theme, template

THEMES = Path("@jupyterlab") / "apputils-extension" / "themes.jupyterlab-settings"
TRANSPARENT = "rgba(0,0,0,0)"


@pytest.fixture
def lab_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Empty JupyterLab user-settings and app directories, used instead of the real ones."""
    user, app = tmp_path / "user-settings", tmp_path / "lab-app"
    monkeypatch.setenv("JUPYTERLAB_SETTINGS_DIR", str(user))
    monkeypatch.setenv("JUPYTERLAB_DIR", str(app))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path / "config-path"))
    return user, app


def _user_theme(user: Path, text: str) -> None:
    path = user / THEMES
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_theme_is_read_from_jupyterlab_settings(lab_dirs: tuple[Path, Path]) -> None:
    user, app = lab_dirs
    assert jupyterlab_theme() == "light"  # JupyterLab's default
    # What JupyterLab writes when the theme is picked from the menu: JSON with comments.
    _user_theme(user, '{\n  // Theme\n  "theme": "JupyterLab Dark",\n}\n')
    assert jupyterlab_theme() == "dark"
    _user_theme(user, '{"theme": "JupyterLab Dark", "adaptive-theme": true}')
    assert jupyterlab_theme() is None  # follows the OS: only the browser knows
    _user_theme(user, "{ not json")
    assert jupyterlab_theme() == "light"

    (user / THEMES).unlink()
    overrides = app / "settings" / "overrides.json"
    overrides.parent.mkdir(parents=True)
    overrides.write_text(
        json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}})
    )
    assert jupyterlab_theme() == "dark"  # an installation-wide default
    _user_theme(user, '{"theme": "JupyterLab Light"}')
    assert jupyterlab_theme() == "light"  # the user's own choice wins


def test_template_backgrounds_are_transparent_and_fonts_fit_the_theme() -> None:
    dark, light, unknown = template("dark"), template("light"), template(None)
    for t in (dark, light, unknown):
        assert t.layout.paper_bgcolor == TRANSPARENT
        assert t.layout.plot_bgcolor == TRANSPARENT
    assert dark.layout.font.color == pio.templates["plotly_dark"].layout.font.color
    assert light.layout.font.color == pio.templates["plotly_white"].layout.font.color
    assert dark.layout.font.color != light.layout.font.color
    assert unknown.layout.font.color not in (dark.layout.font.color, light.layout.font.color)


def test_every_figure_follows_the_theme(lab_dirs: tuple[Path, Path]) -> None:
    from workbench.plots.bench import tps_vs_depth
    from workbench.plots.memory import memory_vs_context
    from workbench.plots.ratings import ratings_figure
    from workbench.plots.runs import run_figures

    user, _ = lab_dirs
    _user_theme(user, '{"theme": "JupyterLab Dark"}')
    runs = pl.DataFrame(
        {"model": ["a", "b"], "ttft_s": [0.1, 0.2], "gen_tps": [10.0, 20.0]},
    ).with_columns(pl.lit(5).alias("completion_tokens"), pl.lit("en").alias("language"))
    bench = pl.DataFrame(
        {
            "model": ["a"],
            "test": ["tg"],
            "n_prompt": [0],
            "n_gen": [8],
            "depth": [0],
            "tps_mean": [10.0],
            "tps_sd": [1.0],
            "error": [None],
            **{c: [1] for c in ("n_threads", "n_batch", "n_ubatch", "n_gpu_layers")},
            "flash_attn": [None],
            "type_k": ["f16"],
            "type_v": ["f16"],
        }
    )
    plans = pl.DataFrame({"model": ["a"], "ctx": [1024], "total_bytes": [2**30]})
    board = pl.DataFrame(
        {
            "model": ["a", "b"],
            "rating": [1010.0, 990.0],
            "ci_low": [1000.0, 980.0],
            "ci_high": [1020.0, 1000.0],
            "rank": [1, 2],
            "battles": [3, 3],
        }
    )
    figures = [
        *run_figures(runs).values(),
        tps_vs_depth(bench),
        memory_vs_context(plans),
        ratings_figure(board),
    ]
    dark_font = pio.templates["plotly_dark"].layout.font.color
    for fig in figures:
        layout = fig.layout.template.layout
        assert layout.paper_bgcolor == TRANSPARENT, fig.layout.title.text
        assert layout.font.color == dark_font, fig.layout.title.text
