"""tools/gen_api.py: deterministic, and its committed output current; the generated modules
say so; ``import deriv_sdk`` loads none of ``deriv_sdk.api``, which loads its parts lazily.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "deriv_sdk" / "api"
TOOLS = ROOT / "tools"
GENERATED = ["v3_types.py", "options_types.py", "_legacy.py", "_options.py"]


def gen_api() -> ModuleType:
    if importlib.util.find_spec("datamodel_code_generator") is None:
        pytest.skip("the generator's extra is not installed: pip install -e '.[gen]'")
    sys.path.insert(0, str(TOOLS))
    try:
        import gen_api

        return gen_api
    finally:
        sys.path.remove(str(TOOLS))


@pytest.mark.timeout(240)
def test_generator_is_deterministic_and_the_committed_modules_are_current() -> None:
    build = gen_api().build
    first, second = build(), build()
    assert sorted(first) == sorted(GENERATED)
    assert first == second
    for name, text in first.items():
        assert (API / name).read_text("utf-8") == text, f"{name} is stale: python tools/gen_api.py"


def test_generated_modules_say_so_and_others_stay_small() -> None:
    for path in sorted(API.glob("*.py")) + sorted(TOOLS.glob("*.py")):
        text = path.read_text("utf-8")
        if path.name in GENERATED:
            head = text[:2000]
            assert "generated" in head and "tools/gen_api.py" in head, path.name
        else:
            assert len(text.splitlines()) <= 500, path.name


def loaded_after(statement: str) -> list[str]:
    """The ``deriv_sdk.api`` modules a fresh interpreter has loaded after ``statement``."""
    code = (
        f"{statement}\nimport json, sys\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('deriv_sdk.api'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    names: list[str] = json.loads(done.stdout)
    return names


def test_import_deriv_sdk_loads_nothing_of_the_typed_calls() -> None:
    assert loaded_after("import deriv_sdk") == []


def test_the_typed_calls_load_on_first_use() -> None:
    assert loaded_after("import deriv_sdk.api") == ["deriv_sdk.api", "deriv_sdk.api._base"]
    assert loaded_after("from deriv_sdk.api import LegacyAPI") == [
        "deriv_sdk.api", "deriv_sdk.api._base", "deriv_sdk.api._legacy",
    ]  # fmt: skip
    assert "deriv_sdk.api.options_types" in loaded_after("from deriv_sdk.api import options_types")
    assert loaded_after("from deriv_sdk.api.v3_types import TicksResponse") == [
        "deriv_sdk.api", "deriv_sdk.api._base", "deriv_sdk.api._compat", "deriv_sdk.api.v3_types",
    ]  # fmt: skip


def test_api_package_attributes() -> None:
    import deriv_sdk.api as api

    assert api.LegacyAPI.__name__ == "LegacyAPI" and api.OptionsAPI.__name__ == "OptionsAPI"
    assert api.v3_types.TicksResponse.__name__ == "TicksResponse"
    assert set(api.__all__) <= set(dir(api))
    with pytest.raises(AttributeError):
        _ = api.NoSuchThing  # type: ignore[attr-defined]
    assert repr(api.OMIT) == "OMIT"
