"""docs/architecture.md stays current, and the layers it describes hold."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from workbench.schemas import BENCH_SCHEMA, RUN_SCHEMA, VOTE_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text()
PKG = ROOT / "workbench"
UI = ("workbench.cli", "workbench.widgets", "workbench.arena", "workbench.plots")


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = f
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """workbench modules ``name`` imports anywhere (function level too), TYPE_CHECKING
    blocks left out."""
    tree = ast.parse(path.read_text())
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
            ]
        else:
            continue
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


@pytest.mark.parametrize(
    ("schema", "title"),
    [(RUN_SCHEMA, "RUN_SCHEMA"), (BENCH_SCHEMA, "BENCH_SCHEMA"), (VOTE_SCHEMA, "VOTE_SCHEMA")],
)
def test_every_schema_column_is_described(schema: dict[str, object], title: str) -> None:
    section = DOC.split(f"(`{title}`", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    described = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
    assert described == list(schema), f"docs/architecture.md's {title} table is out of date"


def test_every_module_is_named() -> None:
    named = set(re.findall(r"`([\w./]+?)/?`", DOC))
    missing = []
    for name in _modules():
        last = name.rpartition(".")[2]
        if name == "workbench" or last.startswith("_"):
            continue
        if last not in named and not any(n.endswith(last) for n in named):
            missing.append(name)
    assert not missing, f"modules docs/architecture.md does not name: {missing}"


def test_core_never_imports_ui() -> None:
    mods = _modules()
    bad = [
        f"{name} -> {t}"
        for name, path in mods.items()
        if not name.startswith(UI) and not name.endswith("__main__")
        for t in _imports(name, path, mods)
        if t.startswith(UI)
    ]
    assert not bad, bad


def test_no_import_cycles() -> None:
    mods = _modules()
    faces = {n for n, p in mods.items() if p.name == "__init__.py"}
    graph = {
        n: {t for t in _imports(n, p, mods) if t not in faces}
        for n, p in mods.items()
        if n not in faces
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(v: str, stack: list[str]) -> None:
        state[v] = 1
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                cycles.append([*stack[stack.index(w) :], w])
            elif w not in state:
                visit(w, [*stack, w])
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v, [v])
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_every_error_class_derives_from_workbench_error() -> None:
    import importlib
    import inspect

    from workbench.errors import WorkbenchError

    outside = []
    for name in _modules():
        if name.endswith("__main__") or ".data" in name:
            continue
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            ours = cls.__module__ == name and issubclass(cls, BaseException)
            if ours and not issubclass(cls, WorkbenchError):
                outside.append(f"{name}.{cls.__name__}")
    assert not outside, f"error classes outside the WorkbenchError hierarchy: {outside}"
