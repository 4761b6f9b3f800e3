"""The package's import structure: no module cycle, and the native kernels reached only through recsys_rbm.accel."""

from __future__ import annotations

import ast
from pathlib import Path

import recsys_rbm

PACKAGE = Path(recsys_rbm.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name | ast.Attribute) and "TYPE_CHECKING" in ast.unparse(node.test)


def _top_level_imports(path: Path) -> set[str]:
    """The package modules a module imports when it is loaded (imports inside functions and under
    ``TYPE_CHECKING`` are left out: they run later, or never)."""
    found: set[str] = set()
    statements = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.If) and not _is_type_checking(node):
            statements += node.body + node.orelse
        elif isinstance(node, ast.Try):
            statements += node.body + node.orelse + node.finalbody
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                for alias in node.names
            }
    return {name for name in found if name in MODULES}


GRAPH = {name: _top_level_imports(path) - {name} for name, path in MODULES.items()}  # less a compiled child's import


def _cycle() -> list[str] | None:
    """One import cycle among the package's modules, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once every import below it is explored

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for imported in sorted(GRAPH[name]):
            if state.get(imported) == "open":
                return [*path[path.index(imported) :], imported] if imported in path else [name, imported]
            if imported not in state and (cycle := visit(imported, [*path, imported])) is not None:
                return cycle
        state[name] = "done"
        return None

    for name in sorted(GRAPH):
        if name not in state and (cycle := visit(name, [name])) is not None:
            return cycle
    return None


def test_no_module_of_the_package_imports_itself_through_others():
    assert _cycle() is None, " -> ".join(_cycle() or [])


def test_the_cycle_check_finds_a_cycle_where_there_is_one(monkeypatch):
    monkeypatch.setitem(GRAPH, "recsys_rbm.rbm.rng", GRAPH["recsys_rbm.rbm.rng"] | {"recsys_rbm.train.trainer"})
    assert _cycle() is not None


def test_only_the_accel_package_imports_the_native_kernels():
    importers = {name for name, imports in GRAPH.items() if "recsys_rbm.accel.native" in imports}
    assert importers and all(name.startswith("recsys_rbm.accel") for name in importers), importers


def test_the_maths_and_the_recommender_import_neither_the_kernels_nor_the_optimiser():
    for name, path in MODULES.items():
        if name.startswith(("recsys_rbm.rbm", "recsys_rbm.recommender")):
            text = path.read_text(encoding="utf-8")
            assert "accel.native" not in text and "accel import native" not in text, name
            assert "train.momentum" not in text, name
