"""``NotRequired`` for the generated TypedDicts, on every supported Python.

``typing.NotRequired`` is new in 3.11. On 3.10 the type checker reads ``typing_extensions``'
(its stubs ship with every checker); at run time ``typing_extensions`` is used when installed,
else a stand-in that returns the type it is given (the keys then look required to
``__required_keys__``, which only run-time introspection reads). ``deriv_sdk`` keeps
websocket-client as its only runtime dependency.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

__all__ = ["NotRequired"]

if sys.version_info >= (3, 11):
    from typing import NotRequired
elif TYPE_CHECKING:
    from typing_extensions import NotRequired
else:  # pragma: no cover - Python 3.10
    try:
        from typing_extensions import NotRequired
    except ImportError:

        class _NotRequired:
            def __getitem__(self, item: Any) -> Any:
                return item

        NotRequired = _NotRequired()
