"""The Plotly template every workbench figure uses: it follows JupyterLab's theme.

JupyterLab renders a Plotly figure with the colours written into it, so a figure made
with Plotly's default (white) template stays white in the dark theme. The page exposes
its theme only to the browser (CSS variables, ``body[data-jp-theme-light]``), and the
kernel that builds the figure reads the same setting JupyterLab does instead: the
``@jupyterlab/apputils-extension:themes`` settings of the server it was started by (the
user's settings over the installation's ``overrides.json`` over the default, Light).

Either way the backgrounds are transparent, so a figure sits on the notebook's own
background; the fonts and grid lines are those of Plotly's light or dark template. When
the theme cannot be known (JupyterLab not installed in the kernel's environment, or the
theme set to follow the operating system) fonts and grid are a grey that reads on both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["Theme", "jupyterlab_theme", "template"]

Theme = Literal["light", "dark"]

_THEMES_SETTINGS = Path("@jupyterlab") / "apputils-extension" / "themes.jupyterlab-settings"
_THEMES_ID = "@jupyterlab/apputils-extension:themes"
_DEFAULT_THEME = "JupyterLab Light"
_TRANSPARENT = "rgba(0,0,0,0)"
_NEUTRAL_FONT = "#808080"
_NEUTRAL_GRID = "rgba(128,128,128,0.25)"


def _read_json5(path: Path) -> dict[str, Any]:
    """A JupyterLab settings file (JSON with comments); {} when missing or unreadable."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        import json5

        data = json5.loads(text)
    except Exception:  # a half-written or hand-broken file must not break a figure
        return {}
    return data if isinstance(data, dict) else {}


def _user_settings_dir() -> Path:
    """JupyterLab's user settings: $JUPYTERLAB_SETTINGS_DIR, else under the Jupyter
    config directory (as ``jupyterlab.commands.get_user_settings_dir``, whose import
    takes seconds)."""
    env = os.environ.get("JUPYTERLAB_SETTINGS_DIR")
    if env:
        return Path(env)
    from jupyter_core.paths import jupyter_config_dir

    return Path(jupyter_config_dir()) / "lab" / "user-settings"


def _override_files() -> list[Path]:
    """Installation-wide setting defaults, lowest precedence first, where
    ``jupyterlab_server`` reads them: the app directory's ``settings/overrides.d/*`` and
    ``settings/overrides.json``, then each Jupyter config directory's
    ``labconfig/default_setting_overrides.json``."""
    app_dir = Path(os.environ.get("JUPYTERLAB_DIR") or Path(sys.prefix) / "share/jupyter/lab")
    settings = app_dir / "settings"
    files = sorted([*settings.glob("overrides.d/*.json"), *settings.glob("overrides.d/*.json5")])
    files += [settings / "overrides.json", settings / "overrides.json5"]
    from jupyter_core.paths import jupyter_config_path

    # jupyter_config_path() lists the user's directory first: it has the last word.
    files += [
        Path(d) / "labconfig" / "default_setting_overrides.json"
        for d in reversed(jupyter_config_path())
    ]
    return files


def jupyterlab_theme() -> Theme | None:
    """ "light" or "dark": the theme JupyterLab shows, as its settings say; None when it
    cannot be known (JupyterLab's settings cannot be read here, or the theme follows the
    operating system's preference, which only the browser sees)."""
    try:
        files = [*_override_files(), _user_settings_dir() / _THEMES_SETTINGS]
    except ImportError:  # no jupyter_core: not under Jupyter at all
        return None
    settings: dict[str, Any] = {}
    for path in files[:-1]:
        settings.update(_read_json5(path).get(_THEMES_ID) or {})
    settings.update(_read_json5(files[-1]))
    if settings.get("adaptive-theme"):
        return None
    name = str(settings.get("theme") or _DEFAULT_THEME)
    # JupyterLab's own themes and most third-party ones say so in their name.
    return "dark" if "dark" in name.lower() else "light"


def template(theme: Theme | Literal["auto"] | None = "auto") -> go.layout.Template:
    """The workbench template for ``theme``: "light", "dark", None (unknown) or "auto"
    (:func:`jupyterlab_theme`, the default).

    Plotly's ``plotly_white`` or ``plotly_dark`` with transparent paper and plot
    backgrounds; for an unknown theme, ``plotly_white`` with grey fonts and grid lines.
    """
    import plotly.graph_objects as go
    import plotly.io as pio

    if theme == "auto":
        theme = jupyterlab_theme()
    base = pio.templates["plotly_dark" if theme == "dark" else "plotly_white"]
    t = go.layout.Template(base)
    t.layout.paper_bgcolor = _TRANSPARENT
    t.layout.plot_bgcolor = _TRANSPARENT
    if theme is None:
        t.layout.font.color = _NEUTRAL_FONT
        for axis in (t.layout.xaxis, t.layout.yaxis):
            axis.gridcolor = _NEUTRAL_GRID
            axis.linecolor = _NEUTRAL_GRID
            axis.zerolinecolor = _NEUTRAL_GRID
    return t
