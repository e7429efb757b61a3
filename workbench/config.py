"""``workbench.toml``: models and OpenAI-compatible endpoints, per project or per user.

Files read, later ones overriding earlier ones entry by entry (by name):

1. the user's: ``$XDG_CONFIG_HOME/workbench/workbench.toml`` (``~/.config/...``);
2. the project's: the first ``workbench.toml`` in the current directory or a parent;
3. ``$WORKBENCH_CONFIG``, when set (one file; the other two are then not read).

Example::

    model_dirs = ["~/models"]            # scanned for .gguf files

    [[models]]
    name = "gemma4-e4b"
    path = "~/models/gemma-4-E4B-it-Q4_K_M.gguf"   # relative paths: to this file
    mmproj = "~/models/mmproj-F16.gguf"            # optional: the vision projector
                                                   # (default: an mmproj-*.gguf beside it)

    [[endpoints]]
    name = "qwen-server"
    url = "http://127.0.0.1:8080/v1"
    model = "qwen3.5-35b-a3b"                      # the served model's name
    api_key_env = "QWEN_API_KEY"                   # optional; the key stays in the env

Keys are never written in the file: an endpoint names the environment variable that
holds its key.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import InputError
from workbench.paths import project_config_path, user_config_path


class ConfigError(InputError):
    """A workbench.toml that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class ModelEntry:
    """A local model file named in workbench.toml."""

    name: str
    """Registry name."""
    path: Path
    """The .gguf file (absolute)."""
    mmproj: Path | None = None
    """Its vision projector (absolute), when the file names one."""


@dataclass(frozen=True)
class EndpointEntry:
    """An OpenAI-compatible server named in workbench.toml."""

    name: str
    """Registry name."""
    url: str
    """API base URL, e.g. http://127.0.0.1:8080/v1."""
    model: str
    """The model name the server expects."""
    api_key_env: str | None = None
    """Environment variable holding the API key (None: $WORKBENCH_API_KEY if set)."""


@dataclass(frozen=True)
class WorkbenchConfig:
    """Everything the config files say, merged."""

    models: tuple[ModelEntry, ...] = ()
    endpoints: tuple[EndpointEntry, ...] = ()
    model_dirs: tuple[Path, ...] = ()
    """Directories scanned for .gguf files."""
    files: tuple[Path, ...] = field(default=())
    """The files read, in order."""


def config_paths() -> list[Path]:
    env = os.environ.get("WORKBENCH_CONFIG")
    if env:
        return [Path(env).expanduser()]
    out = [p for p in (user_config_path(),) if p.is_file()]
    project = project_config_path()
    if project is not None and project not in out:
        out.append(project)
    return out


def _str(doc: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    v = doc.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"{where}: `{key}` must be a non-empty string")
    return v.strip()


def _check_keys(doc: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(doc) - allowed)
    if extra:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})"
        )


def parse_config(doc: dict[str, Any], path: Path) -> WorkbenchConfig:
    """Validate one parsed file. Relative paths are taken relative to the file."""
    base = path.parent

    def resolve(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (base / q).resolve()

    _check_keys(doc, {"models", "endpoints", "model_dirs"}, str(path))
    models = []
    for i, m in enumerate(doc.get("models", [])):
        where = f"{path}: models[{i}]"
        if not isinstance(m, dict):
            raise ConfigError(f"{where}: expected a table ([[models]])")
        _check_keys(m, {"name", "path", "mmproj"}, where)
        p = resolve(str(_str(m, "path", where)))
        name = _str(m, "name", where, required=False) or p.stem.lower()
        mmproj = _str(m, "mmproj", where, required=False)
        models.append(ModelEntry(name, p, resolve(mmproj) if mmproj else None))
    endpoints = []
    for i, e in enumerate(doc.get("endpoints", [])):
        where = f"{path}: endpoints[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{where}: expected a table ([[endpoints]])")
        _check_keys(e, {"name", "url", "model", "api_key_env", "api_key"}, where)
        if "api_key" in e:
            raise ConfigError(
                f"{where}: do not write keys in the file; set `api_key_env` to the name of "
                "the environment variable that holds it"
            )
        url = str(_str(e, "url", where))
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: `url` must start with http:// or https://")
        model = str(_str(e, "model", where))
        name = _str(e, "name", where, required=False) or model
        endpoints.append(EndpointEntry(name, url, model, _str(e, "api_key_env", where,
                                                              required=False)))  # fmt: skip
    dirs = doc.get("model_dirs", [])
    if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
        raise ConfigError(f"{path}: `model_dirs` must be a list of paths")
    return WorkbenchConfig(
        tuple(models), tuple(endpoints), tuple(resolve(d) for d in dirs), (path,)
    )


def load_config(paths: list[Path] | None = None) -> WorkbenchConfig:
    """Read and merge the config files (see the module docstring).

    Raises:
        ConfigError: a file is not valid TOML or has unknown or malformed keys.
    """
    merged_models: dict[str, ModelEntry] = {}
    merged_endpoints: dict[str, EndpointEntry] = {}
    dirs: list[Path] = []
    files: list[Path] = []
    for path in config_paths() if paths is None else paths:
        try:
            doc = tomllib.loads(path.read_text())
        except OSError as e:
            raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
        cfg = parse_config(doc, path)
        for m in cfg.models:
            merged_models.pop(m.name, None)
            merged_endpoints.pop(m.name, None)
            merged_models[m.name] = m
        for ep in cfg.endpoints:
            merged_models.pop(ep.name, None)
            merged_endpoints.pop(ep.name, None)
            merged_endpoints[ep.name] = ep
        dirs += [d for d in cfg.model_dirs if d not in dirs]
        files.append(path)
    return WorkbenchConfig(
        tuple(merged_models.values()), tuple(merged_endpoints.values()), tuple(dirs), tuple(files)
    )
