"""The import rules between deriv_sdk's layers, checked on the source with ``ast``."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import deriv_sdk

PACKAGE = Path(deriv_sdk.__file__).parent
ROOT = PACKAGE.parent
MODULES = sorted(PACKAGE.rglob("*.py"))

# The layers of the client side, lowest first. A module imports only from its own layer or
# below (``test_layers_only_import_downwards``); ``testing/`` is apart: it never imports the
# client side at all.
LAYERS: dict[str, int] = {
    # 0: pure logic (no socket, no websocket-client; threads only as locks and timers)
    "errors": 0,
    "urls": 0,
    "frames": 0,
    "protocol": 0,
    "backoff": 0,
    "events": 0,
    "pending": 0,
    "keepalive": 0,
    "subscriptions": 0,
    "lifecycle": 0,
    # 1: the wire (only transport imports websocket-client)
    "network": 1,
    "link": 1,
    "transport": 1,
    "rest": 1,
    # 2: the parts of a connection, each handed its collaborators
    "dispatch": 2,
    "outbound": 2,
    "inbound": 2,
    "streams": 2,
    "reader": 2,
    "endpoint": 2,
    "runner": 2,
    # 3: the public surface
    "options": 3,
    "connection": 3,
    "__init__": 3,
    # 4: programs
    "cli": 4,
    "__main__": 4,
}
PURE = sorted(f"{name}.py" for name, layer in LAYERS.items() if layer == 0)
PRINT_ALLOWED = {"testing/__main__.py", "cli.py", "__main__.py"}


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (anywhere, TYPE_CHECKING blocks included), absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
                if node.module is None:
                    found.update(f"{target}.{alias.name}" for alias in node.names)
                    continue
            else:
                target = node.module or ""
            found.add(target)
            # ``from deriv_sdk import connection`` imports a submodule too.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def is_under(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def test_the_scan_sees_the_package() -> None:
    names = {rel(p) for p in MODULES}
    assert {"transport.py", "errors.py", "connection.py", "testing/__init__.py"} <= names
    assert any(is_under(n, "websocket") for n in imports(PACKAGE / "transport.py"))
    assert "deriv_sdk.frames" in imports(PACKAGE / "protocol.py")
    assert "deriv_sdk.testing.server" in imports(PACKAGE / "testing" / "__init__.py")


def test_import_resolution() -> None:
    # Relative imports resolve against the module's package.
    assert "deriv_sdk.protocol" in imports(PACKAGE / "subscriptions.py")
    assert "deriv_sdk.errors" in imports(PACKAGE / "pending.py")


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_only_transport_imports_websocket(path: Path) -> None:
    if rel(path) == "transport.py":
        return
    bad = sorted(n for n in imports(path) if is_under(n, "websocket"))
    assert bad == [], f"{rel(path)} imports {bad}; only transport.py may"


def test_errors_imports_only_stdlib() -> None:
    names = imports(PACKAGE / "errors.py")
    assert names, "errors.py should at least import typing"
    bad = sorted(n for n in names if n.split(".")[0] not in sys.stdlib_module_names)
    assert bad == []


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_do_not_import_io(name: str) -> None:
    bad = sorted(
        n
        for n in imports(PACKAGE / name)
        if is_under(n, "deriv_sdk.connection") or is_under(n, "deriv_sdk.transport")
    )
    assert bad == []


@pytest.mark.parametrize("path", [p for p in MODULES if rel(p).startswith("testing/")], ids=rel)
def test_testing_imports_only_testing(path: Path) -> None:
    bad = sorted(
        n
        for n in imports(path)
        if is_under(n, "deriv_sdk") and not is_under(n, "deriv_sdk.testing")
    )
    assert bad == [], f"{rel(path)} imports the client side: {bad}"


def print_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]


def test_print_detection() -> None:
    assert print_calls(PACKAGE / "testing" / "__main__.py")  # it does print the URL


@pytest.mark.parametrize("path", [p for p in MODULES if rel(p) not in PRINT_ALLOWED], ids=rel)
def test_no_print(path: Path) -> None:
    assert print_calls(path) == [], f"{rel(path)} calls print(); use logging"


def layer_of(module: str) -> int | None:
    """The layer of ``deriv_sdk.X`` (None: not a client-side module of the table)."""
    parts = module.split(".")
    if parts[0] != "deriv_sdk":
        return None
    name = parts[1] if len(parts) > 1 else "__init__"
    return LAYERS.get(name)


CLIENT = [p for p in MODULES if not rel(p).startswith(("testing/", "api/"))]


def test_every_client_module_has_a_layer() -> None:
    missing = sorted(rel(p) for p in CLIENT if p.stem not in LAYERS)
    assert missing == [], f"add these modules to LAYERS: {missing}"


@pytest.mark.parametrize("path", CLIENT, ids=rel)
def test_layers_only_import_downwards(path: Path) -> None:
    own = LAYERS[path.stem]
    bad = sorted(
        name
        for name in imports(path)
        if (layer := layer_of(name)) is not None and layer > own and name != module_name(path)
    )
    assert bad == [], f"{rel(path)} (layer {own}) imports a higher layer: {bad}"


def test_pure_modules_import_no_sockets() -> None:
    for name in PURE:
        found = imports(PACKAGE / name)
        assert not {"socket", "ssl", "selectors", "http", "http.client"} & found, name
