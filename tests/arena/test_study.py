"""STUDY.toml parsing and validation, and the loopback guard for demo tokens."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from workbench.arena.study import StudyError, is_loopback, load_study, parse_study
from workbench.cli import main

from .helpers import BUNDLED, need_models, study_text, write_study

DEMO = Path(__file__).resolve().parents[2] / "workbench" / "data" / "studies" / "demo.toml"


def test_demo_study_uses_bundled_models_and_demo_raters() -> None:
    need_models()
    study = load_study(DEMO)
    assert study.model_names == list(BUNDLED)
    assert {(r.name, r.role) for r in study.raters} == {("demo", "rater"), ("admin", "admin")}
    assert study.rater_for("demo-token").name == "demo"  # type: ignore[union-attr]
    assert study.rater_for("admin-token").is_admin  # type: ignore[union-attr]
    assert study.rater_for("nope-nope-nope") is None
    assert study.uses_demo_tokens
    assert study.votes_db.parent.name == "votes"
    assert len(study.prompts) > 10 and study.free_prompts


def test_demo_tokens_keep_the_arena_on_loopback() -> None:
    study = load_study(DEMO, resolve_models=False)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        study.check_host(host)
    for host in ("0.0.0.0", "192.168.1.10", "::", "example.org"):
        with pytest.raises(StudyError, match="demo token"):
            study.check_host(host)
    assert is_loopback("127.0.0.1") and not is_loopback("0.0.0.0")


def test_secret_tokens_may_listen_anywhere(tmp_path: Path) -> None:
    need_models()
    study = load_study(write_study(tmp_path))
    assert not study.uses_demo_tokens
    study.check_host("0.0.0.0")


def test_hashed_token(tmp_path: Path) -> None:
    need_models()
    digest = hashlib.sha256(b"hashed-secret").hexdigest()
    text = study_text(tmp_path) + f'[[raters]]\nname = "h"\ntoken_sha256 = "{digest}"\n'
    study = parse_study(text, base_dir=tmp_path)
    assert study.rater_for("hashed-secret").name == "h"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t + "\nthis is = not toml [", "not valid TOML"),
        (lambda t: "colour = 1\n" + t, "unknown key.*colour"),
        (lambda t: t.replace("max_tokens = 12", 'max_tokens = "many"'), "max_tokens"),
        (lambda t: t.replace("max_tokens = 12", "max_tokens = 0"), "max_tokens"),
        (lambda t: t.replace('votes_db = "votes/test.sqlite"', ""), "votes_db"),
        (lambda t: t.replace('"bob-secret-22"', '"alice-secret-1"'), "share a token"),
        (lambda t: t.replace('"bob-secret-22"', '"short"'), "at least 8"),
        (lambda t: t.replace('name = "bob"', 'name = "alice"'), "duplicate rater"),
        (lambda t: t.replace('role = "admin"', 'role = "root"'), "role"),
        (
            lambda t: t.replace('prompts = ["prompts.jsonl"]', 'prompts = ["missing.jsonl"]'),
            "prompt file not found",
        ),
        (lambda t: t.replace('prompts = ["prompts.jsonl"]', "prompts = []"), "no prompts"),
        (lambda t: 'title = "Gemma vs the rest"\n' + t, "name a model"),
        (lambda t: t.split("[[raters]]")[0], "at least one rater"),
        (lambda t: t.replace("[limits]", "[limits]\nwhatever = 1"), "whatever"),
        (lambda t: 'show_thinking = "open"\n' + t, "show_thinking: expected one of hidden"),
        (lambda t: "show_thinking = true\n" + t, "show_thinking: expected a string"),
        (lambda t: "max_turns = 0\n" + t, "max_turns must be at least 1"),
        (
            lambda t: t.replace("[generation]", '[generation]\nthinking = "yes"'),
            "generation.thinking",
        ),
        (lambda t: 'max_turns = "3"\n' + t, "max_turns: expected an integer"),
        (
            lambda t: "max_turns = 3\n" + t.replace("only = false", 'only = true\nruns_root = "."'),
            "cannot answer follow-up turns",
        ),
    ],
)
def test_malformed_study_is_refused_with_a_clear_message(
    tmp_path: Path, edit: object, message: str
) -> None:
    text = edit(study_text(tmp_path))  # type: ignore[operator]
    with pytest.raises(StudyError, match=message):
        parse_study(text, base_dir=tmp_path, resolve_models=False)


def test_thinking_and_turn_settings(tmp_path: Path) -> None:
    plain = parse_study(study_text(tmp_path), base_dir=tmp_path, resolve_models=False)
    assert (plain.show_thinking, plain.max_turns) == ("hidden", 1)
    text = 'show_thinking = "collapsed"\nmax_turns = 3\n' + study_text(tmp_path)
    study = parse_study(text, base_dir=tmp_path, resolve_models=False)
    assert (study.show_thinking, study.max_turns) == ("collapsed", 3)


def test_unknown_model(tmp_path: Path) -> None:
    need_models()
    text = study_text(tmp_path, models=[BUNDLED[0], "no-such-model-xyz"])
    with pytest.raises(StudyError, match="unknown model 'no-such-model-xyz'"):
        parse_study(text, base_dir=tmp_path)
    text = study_text(tmp_path, models=[BUNDLED[0], str(tmp_path / "gone.gguf")])
    with pytest.raises(StudyError, match="model file not found"):
        parse_study(text, base_dir=tmp_path)
    with pytest.raises(StudyError, match="at least two"):
        parse_study(study_text(tmp_path, models=[BUNDLED[0]]), base_dir=tmp_path)


def test_endpoint_models_are_accepted(tmp_path: Path) -> None:
    text = study_text(tmp_path, models=["http://127.0.0.1:9/v1#a", "http://127.0.0.1:9/v1#b"])
    study = parse_study(text, base_dir=tmp_path)
    assert [m.source for m in study.models] == ["endpoint", "endpoint"]


def test_cli_reports_study_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [", encoding="utf-8")
    assert main(["arena", "--study", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["arena", "--study", str(tmp_path / "none.toml")]) == 2
    assert "study file not found" in capsys.readouterr().err


def test_cli_refuses_public_host_with_demo_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    need_models()
    assert main(["arena", "--study", str(DEMO), "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


def test_cli_check(capsys: pytest.CaptureFixture[str]) -> None:
    need_models()
    assert main(["arena", "--study", str(DEMO), "--check", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"study": "demo"' in out and BUNDLED[1] in out
    assert '"show_thinking": "hidden", "max_turns": 1' in out


def test_twins_are_refused(tmp_path: Path) -> None:
    """A synthetic twin has random weights: its answers are noise, never in a study."""
    need_models()
    from workbench.models.registry import smollm_path
    from workbench.models.twin import twin_from_file

    twin = tmp_path / "smol-twin.gguf"
    twin_from_file(smollm_path(), twin, fill="zeros")  # type: ignore[arg-type]
    with pytest.raises(StudyError, match="synthetic twin"):
        parse_study(study_text(tmp_path, models=[BUNDLED[0], str(twin)]), base_dir=tmp_path)
    with pytest.raises(StudyError, match="synthetic twin"):
        parse_study(
            study_text(tmp_path, models=[BUNDLED[0], "twin:qwen3.5-0.8b"]), base_dir=tmp_path
        )
