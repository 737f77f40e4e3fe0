"""The import graph of deriv_sdk, read from the source with ``ast``: it has no cycle.

Every import counts: module level, inside functions (lazy imports) and under
``if TYPE_CHECKING:``. ``from package import name`` is an edge to ``package.name`` when that
is a module of deriv_sdk, else to ``package``. That a submodule's import runs its parent
package's ``__init__`` first is not an edge (it is how packages work, not a design choice).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import deriv_sdk

PACKAGE = Path(deriv_sdk.__file__).parent
ROOT = PACKAGE.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def edges(name: str, path: Path) -> set[str]:
    """The deriv_sdk modules that module ``name`` (file ``path``) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: edges(name, path) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_scan_sees_imports_of_every_kind() -> None:
    testing = GRAPH["deriv_sdk.testing"]
    assert "deriv_sdk.testing.server" in testing  # TYPE_CHECKING and the lazy __getattr__
    assert "deriv_sdk.testing.state" in GRAPH["deriv_sdk.testing.trading"]
    assert "deriv_sdk.testing.server" in GRAPH["deriv_sdk.testing.pytest_plugin"]  # in a function


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_deriv_sdk_has_no_import_cycle() -> None:
    assert find_cycle(GRAPH) is None, f"import cycle: {' -> '.join(find_cycle(GRAPH) or [])}"


def test_testing_has_no_import_cycle() -> None:
    sub = {n: e for n, e in GRAPH.items() if n.startswith("deriv_sdk.testing")}
    assert len(sub) >= 10
    assert find_cycle(sub) is None


ALLOWED_TO_IMPORT_SERVER = {
    "deriv_sdk.testing",
    "deriv_sdk.testing.command",
    "deriv_sdk.testing.pytest_plugin",
}


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if n.startswith("deriv_sdk.testing.")))
def test_only_the_entry_points_import_the_server(name: str) -> None:
    if name in ALLOWED_TO_IMPORT_SERVER or name == "deriv_sdk.testing.server":
        return
    assert "deriv_sdk.testing.server" not in GRAPH[name], f"{name} imports server.py"
