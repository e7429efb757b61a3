"""``workbench twin``: writes twins from catalog names and local files, refuses bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.gguf import read_model_info
from workbench.testing import write_fixture


def test_twin_of_a_catalog_configuration_prints_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.gguf"
    code = main(["twin", "twin:qwen3.5-0.8b", "-o", str(out), "--fill", "zeros", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["arch"] == "qwen35" and doc["fill"] == "zeros" and doc["path"] == str(out)
    info = read_model_info(out)
    assert info.is_twin and info.quant == "Q4_K_M" and info.vocab_size == 248320


@pytest.mark.slow
def test_twin_of_a_local_file_keeps_its_types(tmp_path: Path) -> None:
    src = write_fixture("llama", tmp_path / "tiny.gguf", n_layer=2)
    out = tmp_path / "twin.gguf"
    assert main(["twin", str(src), "-o", str(out)]) == 0
    a, b = read_model_info(src), read_model_info(out)
    assert a.tensors == b.tensors and b.is_twin


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["twin", "twin:nope-7b", "-o", "x.gguf"], "no published configuration"),
        (["twin", "missing.gguf", "-o", "x.gguf"], "not found"),
        (["twin", "twin:glm-4-9b", "-o", "x.gguf", "--quant", "Q9_9"], "unknown quant"),
        (["twin", "twin:glm-4-9b"], "usage"),
    ],
)
def test_bad_input_is_a_one_line_error(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("workbench twin: ") and message in last
