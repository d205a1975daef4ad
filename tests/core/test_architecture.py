"""The layout docs/ARCHITECTURE.md describes, checked: no import circles between files, and the core's packages
import only downwards (errors/files/devices < data < model < training < config < results, run < export, distributed).

The graph is read with `ast`, lazy imports inside functions included (they are circles all the same, only
later), imports under `if TYPE_CHECKING:` left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nnstudio"

# the rank of each part of the core: an import goes to a lower rank, or stays inside its own part
CORE_RANKS = {
    "errors": 0,
    "files": 1, "devices": 1,
    "data": 2,
    "model": 3,
    "training": 4,
    "config": 5,
    "results": 6, "run": 6,
    "export": 7, "distributed": 7,
    "experiments": 8,
}
# where a part that is not listed here would go: the test below names it, so a new package gets a rank
MAX_FILE_LINES = 800


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & known
            found.update(submodules)
            if len(submodules) < len(node.names):  # a name from the module itself, not only its submodules
                found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = _imports(tree, name, path.name == "__init__.py", known)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one file (a file importing itself is not one)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def _core_part(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "core" else None


def test_the_finder_sees_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x.y\ndef f():\n    from x import z\n")
    assert _imports(tree, "x.w", False, {"x", "x.y", "x.z", "x.w"}) == {"x.z"}


def test_no_import_circles_between_files():
    assert cycles(import_graph()) == []


def test_every_part_of_the_core_has_a_rank():
    parts = {_core_part(name) for name in _modules()} - {None}
    assert parts <= set(CORE_RANKS), f"give these a rank in CORE_RANKS and docs/ARCHITECTURE.md: {parts - set(CORE_RANKS)}"


def test_core_imports_point_downwards():
    wrong = []
    for module, targets in import_graph().items():
        if not module.startswith("nnstudio.core."):
            continue
        here = _core_part(module)
        for target in targets:
            if target.startswith(("nnstudio.gui", "nnstudio.cli")):
                wrong.append(f"{module} -> {target} (the core never imports the window or the command line)")
                continue
            there = _core_part(target)
            if there is None or there == here:
                continue
            if CORE_RANKS[there] >= CORE_RANKS[here]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


# the modules that make the window; every other part of the GUI gets what it needs passed in
WINDOW_MAKERS = {"nnstudio.gui", "nnstudio.gui.main_window", "nnstudio.gui.app"}


def _imports_anywhere(path: Path) -> set[str]:
    """Every module named in an import of the file, `if TYPE_CHECKING:` blocks included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_gui_module_imports_the_window_back():
    wrong = sorted(name for name, path in _modules().items()
                   if name not in WINDOW_MAKERS and "nnstudio.gui.main_window" in _imports_anywhere(path))
    assert wrong == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_file_holds_two_ideas(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_FILE_LINES, f"{path.name} has {lines} lines: split it along what its parts do"
