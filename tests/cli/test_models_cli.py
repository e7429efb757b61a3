"""`workbench models [--json]`: every source, a bad file as an error row, endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEYS = {"name", "path", "arch", "params", "quant", "n_ctx_train", "size_bytes", "chat_template",
        "source"}  # fmt: skip


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench.cli", "models", *args],
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip


@pytest.mark.slow
def test_models_lists_every_source(tmp_path: Path, smollm: Path, bundled: list[str]) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 8)  # header cut short
    lms = tmp_path / "lmstudio" / "pub" / "repo"
    lms.mkdir(parents=True)
    (lms / "SmolLM2-Q4_1.gguf").symlink_to(smollm)
    cfg = tmp_path / "workbench.toml"
    cfg.write_text(f"""
[[models]]
name = "broken"
path = "{bad}"

[[endpoints]]
name = "served"
url = "http://127.0.0.1:9/v1"
model = "qwen3.5-9b"
""")
    env = {**os.environ, "WORKBENCH_CONFIG": str(cfg), "HF_HUB_CACHE": str(tmp_path / "hf"),
           "OLLAMA_MODELS": str(tmp_path / "ollama"),
           "LMSTUDIO_MODELS_DIR": str(tmp_path / "lmstudio")}  # fmt: skip
    env.pop("WORKBENCH_MODELS", None)
    out = _run(["--json"], env)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert all(set(r) >= KEYS for r in rows.values())
    assert set(bundled) <= set(rows)
    assert rows["broken"]["error"] and rows["broken"]["arch"] is None
    assert rows["broken"]["source"] == "directory"
    served = rows["served"]
    assert served["source"] == "endpoint" and served["path"] == "http://127.0.0.1:9/v1"
    assert served["arch"] is None and served["size_bytes"] is None
    local = rows["pub/repo/SmolLM2-Q4_1.gguf"]
    assert local["source"] == "lmstudio" and local["arch"] == "llama"
    assert local["quant"] == "Q4_1" and local["chat_template"] is True
    assert local["size_bytes"] == smollm.stat().st_size and local["n_ctx_train"] == 8192

    table = _run([], env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "SOURCE", "ARCH"]
    assert any(line.startswith("broken") and "error:" in line for line in lines)
    assert any("http://127.0.0.1:9/v1#qwen3.5-9b" in line for line in lines)


def test_a_broken_config_is_reported_not_fatal(tmp_path: Path) -> None:
    cfg = tmp_path / "workbench.toml"
    cfg.write_text("[[models]\n")
    env = {**os.environ, "WORKBENCH_CONFIG": str(cfg), "HF_HUB_CACHE": str(tmp_path / "hf")}
    out = _run(["--json"], env)
    assert out.returncode == 0 and "not valid TOML" in out.stderr
    assert isinstance(json.loads(out.stdout), list)
