"""The import graph of the whole tree holds the layers of docs/ARCHITECTURE.md.

Every ``import`` of every module is read with :mod:`ast`, those inside functions included (a
function-local import still runs, and it only hides a loop): no two modules may import each
other through any chain, ``collector`` and ``estimator`` never import each other, and the
server and its clients meet only in the wire contract (``rpc``) and the composition roots.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("joulecast", "collector", "estimator", "rpc", "server", "client")
GENERATED = ROOT / "rpc" / "generated"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if GENERATED not in path.parents:
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module that ``import name`` runs last (a package's ``__init__`` when the
    name is an object in it), or None for a module outside the project."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                stem = f"{base}.{node.module}" if node.module else base
            else:
                stem = node.module or ""
            # ``from package import name``: name may be a submodule or an object.
            names = [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                yield target


GRAPH = {module: set(_imported(module, path)) for module, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def _edges(source: str, target: str) -> list[str]:
    def inside(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    return sorted(
        f"{module} -> {imported}"
        for module, imports in GRAPH.items()
        if inside(module, source)
        for imported in imports
        if inside(imported, target)
    )


def test_the_graph_is_read() -> None:
    assert "estimator.service" in GRAPH["estimator.canary"]
    assert "joulecast.graph.wire" in GRAPH["joulecast.graph.parse"]
    assert len(GRAPH) > 150


def test_the_edge_finder_finds_edges_between_packages() -> None:
    """The layering tests below assert that edges are absent: this one, that the finder sees
    the edges that are there (the server stands on the estimator; submodules count)."""
    assert "server.core -> estimator.description" in _edges("server", "estimator")
    assert _edges("joulecast.graph", "joulecast.graph.wire")


def test_no_import_cycle_between_modules() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_loop_through_a_local_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("collector", "estimator"),
        ("estimator", "collector"),
        ("server", "client"),
        ("client", "server"),
        ("server", "collector"),
        ("rpc", "server"),
        ("rpc", "client"),
        ("estimator", "server"),
        ("estimator", "client"),
        ("collector", "server"),
        ("collector", "client"),
    ],
)
def test_a_package_never_imports_another(source: str, target: str) -> None:
    assert _edges(source, target) == []


COMPOSITION_ROOTS = (
    "joulecast.cli",
    "joulecast.calibrate_cli",
    "joulecast.predict_cli",
    "joulecast.demo",
    "joulecast.api",
)


def test_only_the_composition_roots_of_joulecast_stand_on_the_packages_above_it() -> None:
    upward = [
        edge
        for package in ("collector", "estimator", "server", "client", "rpc")
        for edge in _edges("joulecast", package)
        if not edge.split(" -> ")[0].startswith(COMPOSITION_ROOTS)
    ]
    assert upward == []


def _builds_protobuf(path: Path) -> bool:
    """Whether the module calls ``pb.<Message>(...)`` (the generated messages as ``pb``)."""
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "pb"
        for node in ast.walk(ast.parse(path.read_text()))
    )


def test_protobuf_is_built_only_in_the_converters() -> None:
    building = sorted(module for module, path in MODULES.items() if _builds_protobuf(path))
    assert building == ["client.convert", "server.converters"]
