"""Prompt sets: bundled ones found by name from anywhere, your own win, bad files say where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.arena.study import demo_study_path, load_study
from workbench.paths import data_dir
from workbench.prompts import PromptSetError, load_prompts


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory and the data directory both outside the checkout."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("WORKBENCH_DATA", str(data))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return data


def test_bundled_sets_load_by_name_outside_the_checkout(elsewhere: Path) -> None:
    ml = load_prompts("multilingual")
    assert len(ml) == 25 and {p.language for p in ml} == {"en", "de", "ar", "vi", "fr"}
    assert {p.prompt_set for p in ml} == {"multilingual"}
    for name in ("coding", "reasoning", "instruction_following"):
        assert load_prompts(name) and load_prompts(name)[0].prompt_set == name
    with pytest.raises(PromptSetError, match="prompt file not found: nosuchset"):
        load_prompts("nosuchset")


def test_an_own_set_in_the_data_directory_wins(elsewhere: Path) -> None:
    own = elsewhere / "prompts"
    own.mkdir()
    row = {"id": "mine-1", "category": "coding", "language": "en", "prompt": "Write FizzBuzz."}
    (own / "coding.jsonl").write_text(json.dumps(row) + "\n")
    assert [p.id for p in load_prompts("coding")] == ["mine-1"]
    assert len(load_prompts("reasoning")) > 1  # other names still reach the bundled sets


def test_the_checkout_data_directory_is_found_from_inside_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = Path(__file__).resolve().parents[1]
    monkeypatch.delenv("WORKBENCH_DATA")
    monkeypatch.chdir(root / "notebooks")
    assert data_dir() == root / "data"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "category": "c", "language": "en", "prompt": "p"}\n{oops\n', "line 2"),
        ('{"id": "a", "category": "c", "language": "en"}\n', "field 'prompt' missing"),
        ("\n\n", "no prompts"),
    ],
)
def test_a_bad_file_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(content)
    with pytest.raises(PromptSetError, match=message):
        load_prompts(path)


def test_a_folder_is_not_a_prompt_file(tmp_path: Path) -> None:
    folder = tmp_path / "set.jsonl"
    folder.mkdir()
    with pytest.raises(PromptSetError, match="cannot read prompt file"):
        load_prompts(folder)


def test_the_demo_study_ships_with_its_prompts(elsewhere: Path) -> None:
    study = load_study(demo_study_path(), resolve_models=False)
    assert study.name == "demo"
    assert {p.prompt_set for p in study.prompts} == {"reasoning", "instruction_following"}
    assert study.votes_db == elsewhere / "votes" / "demo.sqlite"


def test_prompt_set_images_are_relative_to_the_set(tmp_path: Path) -> None:
    from tests.helpers.images import write_images

    files = write_images(tmp_path / "pics")
    f = tmp_path / "vision.jsonl"
    rows = [
        {"id": "v1", "category": "vision", "language": "en", "prompt": "What is it?",
         "image": "pics/probe.png"},
        {"id": "v2", "category": "vision", "language": "en", "prompt": "Which differ?",
         "images": ["pics/probe.png", str(files["webp"])]},
        {"id": "t1", "category": "text", "language": "en", "prompt": "Hello"},
    ]  # fmt: skip
    f.write_text("\n".join(json.dumps(r) for r in rows))
    got = load_prompts(f)
    assert [len(p.images) for p in got] == [1, 2, 0]
    assert got[0].images[0].data == files["png"].read_bytes()
    assert got[1].images[1].format == "webp"


@pytest.mark.parametrize(
    ("field", "says"),
    [
        ({"image": "pics/cut.png"}, "line 1: cut.png: a corrupt PNG image"),
        ({"image": "pics/none.png"}, "line 1: "),
        ({"images": "pics/probe.png"}, "`images` must be a list"),
        ({"image": "a.png", "images": []}, "not both"),
    ],
)
def test_prompt_set_bad_images_are_one_line(
    tmp_path: Path, field: dict[str, object], says: str
) -> None:
    from tests.helpers.images import write_images

    write_images(tmp_path / "pics")
    f = tmp_path / "vision.jsonl"
    row = {"id": "v1", "category": "vision", "language": "en", "prompt": "What?", **field}
    f.write_text(json.dumps(row))
    with pytest.raises(PromptSetError) as e:
        load_prompts(f)
    assert says in str(e.value) and "\n" not in str(e.value)
