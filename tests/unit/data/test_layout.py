"""The data layer's shape: no module branches on a stage name (data/kinds.py's table is the one place stages are
named), and the modules import each other without a loop."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import tunelab.data

DATA = Path(tunelab.data.__file__).parent


def modules() -> dict[str, ast.Module]:
    """Every module of tunelab.data by dotted name, parsed."""
    return {"tunelab.data." + ".".join(path.relative_to(DATA).with_suffix("").parts).removesuffix(".__init__"):
            ast.parse(path.read_text(encoding="utf-8")) for path in sorted(DATA.rglob("*.py"))}


def test_no_module_compares_a_stage() -> None:
    found = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Name) and o.id == "stage" for o in operands):
                    found.append(f"{name}:{node.lineno}")
    assert found == []


def imports_of(tree: ast.Module, known: set[str]) -> set[str]:
    """The tunelab.data modules a module imports (anywhere in it, function bodies included)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known}
            out |= {node.module} & known
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names} & known
    return out


def test_data_modules_import_each_other_without_a_loop() -> None:
    trees = modules()
    graph = {name: imports_of(tree, set(trees)) - {name} for name, tree in trees.items()}
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import loop: {' -> '.join(exc.args[1])}")
