"""The import graph keeps the architecture of docs/architecture.md.

Every ``import`` of every module is read with ``ast``: at module level, inside
functions and under ``if TYPE_CHECKING`` alike, since a function-local import that
closes a cycle is still a cycle. Two graphs are checked for cycles: modules, and
components (a subpackage such as ``depthsense.engine`` or ``depthsense.data`` is one
component; a module directly in ``depthsense/`` is its own). ``models``, ``losses`` and
``data`` may import only themselves and the leaves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"depthsense": "depthsense", "data": "depthsense.data", "losses": "depthsense.losses",
           "models": "depthsense.models", "tools": "depthsense.tools"}
"""Source folder -> the package it installs as (pyproject's package-dir)."""

LOWER = ("depthsense.models", "depthsense.losses", "depthsense.data")
LEAVES = ("depthsense.errors", "depthsense.io", "depthsense.atomic", "depthsense.metrics", "depthsense.check")
"""What the lower packages may import besides themselves (ARCHITECTURE.md section 1)."""

STAGES = {
    "depthsense.engine": {"depthsense.evaluation"},
    "depthsense.evaluation": set(),
    "depthsense.inference": set(),
    "depthsense.experiments": {"depthsense.engine", "depthsense.evaluation", "depthsense.inference"},
}
"""Which other stages each stage of the core may import (docs/architecture.md); every stage
may import the leaves (the modules directly in depthsense/) and models, losses, data."""


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the installed namespace."""
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((package, *parts))] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """``(imported depthsense module, line)`` for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule; `from mod import name` the module
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("depthsense") and target != name:
                found.append((target, node.lineno))
    return found


def _graph() -> dict[str, dict[str, str]]:
    """module -> {imported module: "file:line" of the first such import}."""
    graph: dict[str, dict[str, str]] = {}
    for name, path in MODULES.items():
        edges = graph.setdefault(name, {})
        for target, line in _imports(name, path):
            edges.setdefault(target, f"{path.relative_to(ROOT)}:{line}")
    return graph


def _component(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and f"{parts[0]}.{parts[1]}" in MODULES and MODULES[f"{parts[0]}.{parts[1]}"].name == "__init__.py":
        return f"{parts[0]}.{parts[1]}"  # a subpackage: depthsense.engine, depthsense.data, ...
    return module


def _component_graph(graph: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for module, edges in graph.items():
        mine = out.setdefault(_component(module), {})
        for target, where in edges.items():
            other = _component(target)
            if other != _component(module):
                mine.setdefault(other, f"{module} -> {target} ({where})")
    return out


def find_cycle(graph: dict[str, dict[str, str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def _describe(cycle: list[str], graph: dict[str, dict[str, str]]) -> str:
    steps = "\n".join(f"  {a} -> {b}   [{graph[a][b]}]" for a, b in zip(cycle, cycle[1:]))
    return f"import cycle {' -> '.join(cycle)}:\n{steps}"


def test_the_graph_reads_every_kind_of_import():
    graph = _graph()
    assert len(MODULES) > 60 and "depthsense.engine.trainer" in graph and "depthsense.models.sparse_unet" in graph
    # function-local: depthsense-evaluate reaches the engine's synthetic cache inside main()
    assert "depthsense.engine" in graph["depthsense.tools.evaluate"]
    # `from depthsense.data import synthetic` is the submodule, not the package
    assert "depthsense.data.synthetic" in graph["depthsense.engine.train_data"]


def test_no_import_cycle_between_modules():
    graph = _graph()
    cycle = find_cycle(graph)
    assert cycle is None, _describe(cycle, graph)


def test_no_import_cycle_between_packages():
    graph = _component_graph(_graph())
    cycle = find_cycle(graph)
    assert cycle is None, _describe(cycle, graph)


@pytest.mark.parametrize("package", LOWER)
def test_models_losses_and_data_import_only_themselves_and_the_leaves(package):
    bad = [f"{module} imports {target} ({where})"
           for module, edges in _graph().items() if _component(module) == package
           for target, where in edges.items() if _component(target) not in (package, *LEAVES)]
    assert not bad, f"{package} may import only itself and {', '.join(LEAVES)}:\n" + "\n".join(bad)


def test_stages_and_leaves_import_in_the_documented_direction():
    graph = _graph()
    stages = set(STAGES)
    entry = {"depthsense.tools", "depthsense.demo", "depthsense.pretrain"}
    bad = []
    for module, edges in graph.items():
        mine = _component(module)
        if mine in entry or mine in LOWER:
            continue  # entry points import anything; the lower packages have their own test
        allowed = STAGES.get(mine, set())  # a leaf (or the root package) may import no stage
        for target, where in edges.items():
            other = _component(target)
            if other == mine or other not in stages | entry:
                continue
            if other not in allowed:
                bad.append(f"{module} imports {target} ({where})")
    assert not bad, "imports against the direction of docs/architecture.md:\n" + "\n".join(bad)


def test_a_cycle_is_found_and_named_with_its_imports():
    graph = {"a": {"b": "a.py:3"}, "b": {"c": "b.py:7"}, "c": {"a": "c.py:1", "d": "c.py:2"}, "d": {}}
    cycle = find_cycle(graph)
    assert cycle == ["a", "b", "c", "a"]
    text = _describe(cycle, graph)
    assert "a -> b -> c -> a" in text and "[c.py:1]" in text
    assert find_cycle({"a": {"b": ""}, "b": {}, "c": {"a": ""}}) is None
