"""workbench.toml: models and endpoints at project and user level."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import ConfigError, load_config
from workbench.models import registry


def _write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_project_overrides_user_and_paths_are_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKBENCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    _write(
        tmp_path / "xdg" / "workbench" / "workbench.toml",
        """
[[endpoints]]
name = "qwen"
url = "http://10.0.0.5:8000/v1"
model = "user-level"

[[endpoints]]
name = "ollama"
url = "http://127.0.0.1:11434/v1"
model = "smollm2:135m"
""",
    )
    project = tmp_path / "proj"
    _write(
        project / "workbench.toml",
        """
model_dirs = ["models"]

[[models]]
name = "mine"
path = "weights/mine.gguf"

[[endpoints]]
name = "qwen"
url = "http://127.0.0.1:8080/v1/"
model = "qwen3.5-35b-a3b"
api_key_env = "QWEN_KEY"
""",
    )
    (project / "models").mkdir()
    (project / "models" / "Extra-Q8_0.gguf").write_bytes(b"GGUF")
    sub = project / "notebooks"
    sub.mkdir()
    monkeypatch.chdir(sub)  # found from a subdirectory, like git finds its repo
    cfg = load_config()
    assert [p.name for p in cfg.files] == ["workbench.toml", "workbench.toml"]
    refs = {r.name: r for r in registry.config_models()}
    assert refs["mine"].path == str(project / "weights" / "mine.gguf")
    assert refs["qwen"].path == "http://127.0.0.1:8080/v1"  # the project's wins
    assert refs["qwen"].served_model == "qwen3.5-35b-a3b"
    assert refs["qwen"].api_key_env == "QWEN_KEY" and refs["qwen"].is_endpoint
    assert refs["ollama"].source == "endpoint"
    assert refs["extra-q8_0"].source == "directory"
    # The registry lists and resolves them.
    assert registry.resolve("qwen").served_model == "qwen3.5-35b-a3b"
    assert registry.resolve("mine").source == "directory"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "[[endpoints]]\nurl = 'http://x/v1'\nmodel = 'm'\napi_key = 'sk-1'\n",
            "do not write keys",
        ),
        ("[[endpoints]]\nurl = 'ftp://x'\nmodel = 'm'\n", "http://"),
        ("[[endpoints]]\nurl = 'http://x/v1'\n", "`model`"),
        ("[[models]]\nname = 'a'\npth = 'x.gguf'\n", "unknown key"),
        ("modles = []\n", "unknown key"),
        ("[[models]\n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_file_and_the_key(tmp_path: Path, text: str, match: str) -> None:
    p = _write(tmp_path / "workbench.toml", text)
    with pytest.raises(ConfigError, match=match) as e:
        load_config([p])
    assert str(p) in str(e.value)


def test_workbench_config_env_names_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = _write(tmp_path / "elsewhere.toml", "[[endpoints]]\nurl='http://h:1/v1'\nmodel='m'\n")
    monkeypatch.setenv("WORKBENCH_CONFIG", str(p))
    cfg = load_config()
    assert cfg.files == (p,) and cfg.endpoints[0].name == "m"
