"""``deriv_sdk.api``: typed calls for Deriv's two WebSocket APIs, generated from the schemas.

    from deriv_sdk import Connection
    from deriv_sdk.api import LegacyAPI

    with Connection(app_id=1089) as conn:
        api = LegacyAPI(conn)
        history = api.ticks_history("R_100", end="latest", count=10)
        print(history["history"]["prices"][-1])

- :class:`LegacyAPI` (v3, ``Connection(...)``) and :class:`OptionsAPI` (the new API,
  ``Connection.options(...)``): one method per call, in the generated modules ``_legacy`` and
  ``_options``.
- The request and response TypedDicts: ``deriv_sdk.api.v3_types`` and
  ``deriv_sdk.api.options_types`` (e.g. ``from deriv_sdk.api.v3_types import TicksResponse``),
  also reachable as the attributes ``deriv_sdk.api.v3_types`` / ``.options_types``.

Everything is loaded on first use (PEP 562): ``import deriv_sdk`` does not import this
package, and importing it loads none of the generated modules until a name is asked for.
See docs/typed-calls.md; regenerate with ``python tools/gen_api.py``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deriv_sdk.api._base import OMIT, Omit

if TYPE_CHECKING:
    from deriv_sdk.api import options_types, v3_types
    from deriv_sdk.api._legacy import LegacyAPI
    from deriv_sdk.api._options import OptionsAPI

__all__ = ["OMIT", "LegacyAPI", "Omit", "OptionsAPI", "options_types", "v3_types"]

_LAZY = {
    "LegacyAPI": ("deriv_sdk.api._legacy", "LegacyAPI"),
    "OptionsAPI": ("deriv_sdk.api._options", "OptionsAPI"),
    "v3_types": ("deriv_sdk.api.v3_types", None),
    "options_types": ("deriv_sdk.api.options_types", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
