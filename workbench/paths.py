"""Where workbench reads and writes: the data, cache, twins and config directories, and
the data that ships inside the package.

Every other module asks here; nothing else reads ``$WORKBENCH_DATA``, ``$WORKBENCH_CACHE``
or ``$XDG_CONFIG_HOME``.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

CONFIG_NAME = "workbench.toml"


def data_dir() -> Path:
    """Runs, bench results and votes: $WORKBENCH_DATA, else the ``data/`` of the workbench
    checkout the process runs in (found by walking up from the working directory), else
    ~/.local/share/workbench."""
    env = os.environ.get("WORKBENCH_DATA")
    if env:
        return Path(env).expanduser()
    cwd = Path.cwd().resolve()
    for d in (cwd, *cwd.parents):
        if (d / "data").is_dir() and (d / "workbench" / "paths.py").is_file():
            return d / "data"
    return Path.home() / ".local" / "share" / "workbench"


def package_data(*parts: str) -> Path:
    """A file or folder that ships inside the package (``workbench/data/``: the bundled
    prompt sets and the demo study), found with importlib.resources so that a wheel
    install has it too."""
    return Path(str(resources.files("workbench").joinpath("data", *parts)))


def cache_root() -> Path:
    """$WORKBENCH_CACHE, else ~/.cache/workbench."""
    return Path(os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "workbench")


def cache_dir() -> Path:
    """Assembled bundled models and the sha256 cache: ``cache_root()/models``."""
    return cache_root() / "models"


def twins_dir() -> Path:
    """Synthetic twins built on first use: ``cache_dir()/twins``."""
    return cache_dir() / "twins"


def user_config_path() -> Path:
    """The user's workbench.toml: ``$XDG_CONFIG_HOME/workbench/workbench.toml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "workbench" / CONFIG_NAME


def project_config_path(start: str | Path | None = None) -> Path | None:
    """The first workbench.toml in ``start`` (default: the current directory) or above."""
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        p = d / CONFIG_NAME
        if p.is_file():
            return p
    return None
