"""``workbench memory --budget``: rows over the budget are marked, and a context set by
the model's trained length says it is that cap, not the memory's limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.gguf import read_model_info
from workbench.models.memory import GIB, plan


def test_budget_marks_rows_over_it_and_names_the_cap(
    smollm: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info = read_model_info(smollm)
    assert info.n_ctx_train == 8192
    small, large = plan(info, 4096).total_bytes, plan(info, 8192).total_bytes
    budget = round((small + large) / 2 / GIB, 4)  # 4096 fits, 8192 does not
    assert small < budget * GIB < large

    argv = ["memory", "-m", str(smollm), "--ctx", "4096", "--ctx", "8192"]
    assert main([*argv, "--budget", str(budget)]) == 0
    lines = capsys.readouterr().out.splitlines()
    row4k = next(line for line in lines if line.split()[:1] == ["4096"])
    row8k = next(line for line in lines if line.split()[:1] == ["8192"])
    assert "over" not in row4k and row8k.endswith(f"over {budget:g} GiB")
    fit = next(line for line in lines if "max context in" in line)
    assert "trained context 8192" in fit and "cap" not in fit

    assert main([*argv, "--budget", "8"]) == 0
    fit = next(line for line in capsys.readouterr().out.splitlines() if "max context" in line)
    assert fit.strip() == (
        "max context in 8 GiB: 8192, the trained context: the model's cap, not the memory's limit"
    )

    assert main([*argv, "--budget", str(budget), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["ctx"], r["over_budget"]) for r in rows] == [(4096, False), (8192, True)]
    assert all(r["max_ctx_is_trained_cap"] is False and r["max_ctx"] < 8192 for r in rows)
