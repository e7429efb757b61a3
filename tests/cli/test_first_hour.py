"""What a new user reads and sees first: how to run ``workbench`` after ``make demo``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_says_how_to_run_workbench_right_after_make_demo() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("make demo   #")
    block_end = readme.index("```", start)  # the end of the make demo / make test block
    after = readme[block_end : block_end + 400]
    assert "`.venv/bin/workbench" in after and "`source .venv/bin/activate`" in after


def test_the_readme_links_the_architecture_not_a_missing_design_document() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "DESIGN" not in readme
    links = re.findall(r"\]\(([^)#:]+)\)", readme)  # relative links only
    assert "docs/architecture.md" in links


def test_make_demo_ends_by_saying_how_to_run_workbench() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is missing: the README's first commands need it")
    # Under `make test` the parent make's flags would leak in (directory banners, -j).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(
        [make, "-n", "--no-print-directory", "demo"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("echo ")
    assert ".venv/bin/workbench --help" in last and "source .venv/bin/activate" in last
