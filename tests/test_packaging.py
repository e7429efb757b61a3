"""A wheel install has what a checkout has: the prompt sets and the demo study."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # builds a wheel (isolated build env), then runs a model


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel --no-deps .`` of a copy of the sources (the build writes build/ and
    *.egg-info into the tree it builds, which must not be the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "workbench", src / "workbench", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("workbench-*.whl")
    return built


def test_the_wheel_carries_the_prompt_sets_and_the_demo_study(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    bundled = {
        f"workbench/data/prompts/{p.name}" for p in (ROOT / "workbench/data/prompts").iterdir()
    }
    assert bundled and bundled <= names
    assert "workbench/data/studies/demo.toml" in names
    assert "workbench/py.typed" in names


def test_compare_runs_a_bundled_set_from_a_wheel_outside_the_checkout(
    wheel: Path, tmp_path: Path, smollm: Path
) -> None:
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site)]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=300)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "WORKBENCH_DATA": str(tmp_path / "data")}
    where = subprocess.run(
        [sys.executable, "-c", "import workbench; print(workbench.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(site)  # the wheel's copy, not the checkout
    out = subprocess.run(
        [
            sys.executable, "-m", "workbench", "compare", "--prompts", "multilingual",
            "-m", str(smollm), "--max-tokens", "1", "--ctx", "512", "--threads", "1", "--no-store",
            "--json",
        ],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 25 and {r["prompt_set"] for r in rows} == {"multilingual"}
    assert {r["language"] for r in rows} == {"en", "de", "ar", "vi", "fr"}
    assert all(r["error"] is None for r in rows)
