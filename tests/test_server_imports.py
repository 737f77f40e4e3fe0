"""Import rules of deriv_sdk.testing: never the client side of deriv_sdk, so that a client bug
cannot hide itself in the server; only the stdlib, websockets, jsonschema (and pytest in the
plugin)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import deriv_sdk.testing

PACKAGE = Path(deriv_sdk.testing.__file__).parent
ALLOWED_THIRD_PARTY = {"websockets", "jsonschema", "pytest"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_testing_never_imports_the_client_side() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "deriv_sdk":
                assert name.startswith("deriv_sdk.testing"), f"{path.name} imports {name}"
            else:
                assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, (
                    f"{path.name} imports {name}"
                )
    plugin = _imports(PACKAGE / "pytest_plugin.py")
    assert "websockets" not in {n.split(".")[0] for n in plugin}


def test_no_module_of_testing_is_over_500_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert len(sizes) >= 15
    assert max(sizes.values()) <= 500, {n: s for n, s in sizes.items() if s > 500}
