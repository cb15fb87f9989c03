"""The package's import graph, read statically (ast): no cycle, and the two top layers stay on top.

Every ``import``/``from ... import`` of a ``tts_adapt`` module counts, wherever it stands: at module
level, inside a function (the lazy imports that keep ``--help`` fast) or under ``TYPE_CHECKING``. A cycle
through a lazy import still means two modules that cannot be understood, tested or moved one without
the other. ``pretrain/`` (the pre-training runs) and ``cli/`` (the commands) are the top: nothing below
them imports from them, so a concept both need (the recogniser's alignments, a clip's output level)
lives below both.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tts_adapt"
TOP_LAYERS = ("tts_adapt.pretrain", "tts_adapt.cli")
ENTRY_POINTS = {"tts_adapt.__main__"}  # ``python -m tts_adapt`` runs the command line


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package ``__init__``) for every module under ``root``."""
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a name imported from a package counts as the
    submodule of that name where one exists, else as the package)."""
    modules = _modules(root)
    top = root.name

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                targets = [
                    f"{origin}.{a.name}" if f"{origin}.{a.name}" in modules else origin for a in node.names
                ]
            else:
                continue
            for target in targets:
                if target == top or target.startswith(top + "."):
                    resolved = known(target)
                    if resolved is not None and resolved != name:
                        deps.add(resolved)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or ``None`` (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def _in(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def test_the_checker_finds_a_lazy_cycle_and_resolves_relative_imports(tmp_path):
    """A hand-made package: ``a`` imports ``b`` at module level, ``b`` imports ``a`` inside a function
    (relative, two dots), ``c`` only under TYPE_CHECKING of ``a``; the cycle is a -> b -> a."""
    pkg = tmp_path / "tts_adapt"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from .sub import b\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import tts_adapt.c\n"
    )
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import thing\n")
    (pkg / "c.py").write_text("import os\n")
    graph = import_graph(pkg)
    assert graph["tts_adapt.a"] == {"tts_adapt.sub.b", "tts_adapt.c"}
    assert graph["tts_adapt.sub.b"] == {"tts_adapt.a"}
    assert find_cycle(graph) == ["tts_adapt.a", "tts_adapt.sub.b", "tts_adapt.a"]
    del graph["tts_adapt.sub.b"]
    assert find_cycle(graph) is None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(PACKAGE)


def test_no_import_cycle(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_nothing_below_pretrain_or_cli_imports_from_them(graph):
    wrong = sorted(
        f"{module} -> {dep}"
        for module, deps in graph.items()
        for dep in deps
        for layer in TOP_LAYERS
        if _in(dep, layer)
        and not _in(module, layer)
        and module not in ENTRY_POINTS
        and not (_in(module, "tts_adapt.cli") and layer == "tts_adapt.pretrain")
    )
    assert not wrong, "imports from a top layer: " + "; ".join(wrong)


def test_the_graph_covers_the_package(graph):
    """Guards the checker against reading nothing: the modules that once formed the cycles are there,
    with the edges that now replace them."""
    assert "tts_adapt.alignment.paths" in graph["tts_adapt.objective.finetune"]
    assert "tts_adapt.train.manifest" in graph["tts_adapt.train.provenance"]
    assert "tts_adapt.models.styletts2.inference" in graph["tts_adapt.models.styletts2.model"]
    assert len(graph) > 150
