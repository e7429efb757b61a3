"""One catalog behind ``pull``, ``twin`` and ``twin:NAME``: the same names everywhere, each
entry usable by every door."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main
from workbench.models import hub
from workbench.models.catalog import CATALOG, catalog_entry
from workbench.models.twin import catalog_headers, twin_entries


def _listing(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    assert main(list(argv)) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
    return rows


def test_pull_and_twin_list_the_same_names(capsys: pytest.CaptureFixture[str]) -> None:
    pulled = _listing(capsys, "pull", "--list", "--json")
    twins = _listing(capsys, "twin", "--list", "--json")
    names = [r["name"] for r in pulled]
    assert names == [r["name"] for r in twins] == [e.name for e in CATALOG]
    assert len(set(names)) == len(names)
    assert {r["twin"] for r in twins} == {f"twin:{n}" for n in names}
    by_config = {r["name"] for r in twins if r["source"] == "configuration"}
    assert by_config == {e.name for e in twin_entries()}
    assert {"gemma-4-26b-a4b", "qwen3.5-35b-a3b", "glm-4.7-flash"} <= by_config
    assert {r["source"] for r in twins} == {"configuration", "hub header"}


def test_listings_have_a_header(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "REPO", "PARAMS", "NOTE"]
    assert len(lines) == len(CATALOG) + 1 and lines[1].startswith(CATALOG[0].name + " ")
    assert main(["twin", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("NAME") and lines[1].startswith(f"twin:{CATALOG[0].name} ")


def test_every_entry_serves_every_door() -> None:
    families = {e.family for e in CATALOG}
    assert {"gemma-4", "qwen-3.5", "glm-4"} <= families
    gemma = {e.name for e in CATALOG if e.family == "gemma-4"}
    assert {"gemma-4-e2b", "gemma-4-e4b", "gemma-4-26b-a4b", "gemma-4-31b"} <= gemma
    for e in CATALOG:
        assert hub.parse_spec(e.name).repo == e.repo  # pull
        assert e.quants and all(q == q.upper() for q in e.quants)
        if e.hparams is not None:  # twin:NAME from the configuration: a layout exists
            head = catalog_headers(e.name)
            assert head.tensors and head.entries[0].value == e.hparams.arch


def test_one_spelling_and_its_deprecated_alias() -> None:
    entry = catalog_entry("twin:Gemma-4-E4B")
    assert entry is not None and entry.name == "gemma-4-e4b"
    assert catalog_entry("catalog:gemma-4-e4b") is entry
    assert catalog_entry("gemma-4-e4b") is entry
    assert catalog_entry("gemma-9") is None
