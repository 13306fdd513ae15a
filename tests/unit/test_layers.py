"""The layer order of DESIGN.md, enforced from the imports: a module imports only from its own layer or below, and
no modules import each other in a loop.

Every module under src/tunelab is parsed with `ast` (nothing is imported): `import x`, `from x import y` and
relative imports count, at module level and inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import tunelab

# Bottom to top: runtime -> config -> data, text -> model -> train, infer -> eval, export -> sweep -> interfaces.
LAYERS: dict[str, int] = {
    "runtime": 0,
    "config": 1,
    "data": 2, "text": 2, "templates": 2, "remote": 2,
    "model": 3,
    "train": 4, "infer": 4,
    "eval": 5, "export": 5,
    "sweep": 6,
    "interfaces": 7,
}
TOP = 8  # tunelab/__init__ and tunelab/__main__: they may import anything, nothing imports them

def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the package folder (a package is its __init__)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = (package.name, *path.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module name a `from ... import` names (relative imports resolved against `module`)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def known(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of the modules (None: outside the package)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in modules:
            return prefix
    return None


def imported(module: str, modules: Mapping[str, Path]) -> Iterator[str]:
    """Every module of the package that `module` imports, anywhere in its file."""
    path = modules[module]
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = absolute(node, module, is_package)
            names = [source] + [f"{source}.{alias.name}" for alias in node.names]  # `from pkg import module`
        for name in names:
            target = known(name, modules)
            if target is not None and target != module:
                yield target


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = module_files(package)
    return {module: set(imported(module, modules)) for module in modules}


def layer(module: str) -> int:
    """The layer of a module; a package missing from LAYERS is a KeyError naming it."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return TOP
    return LAYERS[parts[1]]


def loops(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(graph: Mapping[str, set[str]]) -> set[str]:
    """Every upward import ('a -> b') and every import loop ('loop: a, b, ...')."""
    upward = {f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer(b) > layer(a)}
    return upward | {"loop: " + ", ".join(component) for component in loops(graph)}


def unlayered(graph: Mapping[str, set[str]]) -> set[str]:
    """Subpackages of the package that LAYERS does not place."""
    return {module.split(".")[1] for module in graph if "." in module} - set(LAYERS) - {"__main__"}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(Path(tunelab.__file__).parent)


def test_every_package_has_a_layer(graph: dict[str, set[str]]) -> None:
    assert unlayered(graph) == set(), "add the new package to LAYERS (and to DESIGN.md's layer list)"


def test_no_upward_imports_and_no_loops(graph: dict[str, set[str]]) -> None:
    new = sorted(violations(graph))
    assert not new, ("imports against the layer order (runtime -> config -> data, text -> model -> train, infer -> "
                     "eval, export -> sweep -> interfaces) or in a loop:\n  " + "\n  ".join(new))


def write(root: Path, files: dict[str, str]) -> Path:
    """A fake `tunelab` package under root, from {relative path: source}."""
    for name, text in files.items():
        path = root / "tunelab" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "tunelab"


def test_the_analysis_sees_every_kind_of_import(tmp_path: Path) -> None:
    package = write(tmp_path, {
        "__init__.py": "",
        "__main__.py": "from tunelab.interfaces import cli\n",
        "runtime/__init__.py": "",
        "runtime/env.py": "def f():\n    import tunelab.config.schema\n",  # function level, `import a.b.c`
        "config/__init__.py": "",
        "config/schema.py": "from . import load\nfrom .load import thing\n",  # relative
        "config/load.py": "from tunelab.config import schema\nthing = 1\n",
        "model/__init__.py": "",
        "model/load.py": "from ..runtime.env import f\n",
        "interfaces/__init__.py": "",
        "interfaces/cli.py": "from tunelab import __name__ as n\nimport json\n",
    })
    graph = import_graph(package)
    assert graph["tunelab.runtime.env"] == {"tunelab.config.schema"}
    assert graph["tunelab.config.schema"] == {"tunelab.config", "tunelab.config.load"}
    assert graph["tunelab.model.load"] == {"tunelab.runtime.env"}
    assert violations(graph) == {
        "tunelab.runtime.env -> tunelab.config.schema",
        "tunelab.interfaces.cli -> tunelab",
        "loop: tunelab.config.load, tunelab.config.schema",
    }


def test_a_package_outside_the_layers_is_named(tmp_path: Path) -> None:
    graph = import_graph(write(tmp_path, {"__init__.py": "", "runtime/__init__.py": "", "plugins/__init__.py": "",
                                          "plugins/x.py": "import tunelab.runtime\n"}))
    assert unlayered(graph) == {"plugins"}
    with pytest.raises(KeyError, match="plugins"):
        violations(graph)
