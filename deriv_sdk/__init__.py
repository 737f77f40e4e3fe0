"""deriv_sdk: a synchronous, callback-based Python SDK for Deriv's WebSocket APIs.

Both of Deriv's APIs: the new one (``Connection.options``, ``RestClient``) and v3, the
"Legacy API" (``Connection``). The socket runs on background threads; listeners run on one
dispatch thread; requests block until their answer (or a typed exception). See the README
and ``docs/`` for the whole picture.

``RestClient`` is imported on first use (PEP 562): ``import deriv_sdk`` does not load
``http.client``, nor the generated typed calls of ``deriv_sdk.api``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .connection import Connection
from .errors import (
    APIError,
    ConnectError,
    ConnectionClosedError,
    DerivError,
    InvalidStateError,
    ProtocolError,
    RequestTimeoutError,
    RestError,
)
from .events import CloseEvent, ErrorEvent, Event, MessageEvent, OpenEvent
from .subscriptions import Subscription

if TYPE_CHECKING:
    from .rest import RestClient

__version__ = "0.2.0"

__all__ = [
    "APIError",
    "CloseEvent",
    "ConnectError",
    "Connection",
    "ConnectionClosedError",
    "DerivError",
    "ErrorEvent",
    "Event",
    "InvalidStateError",
    "MessageEvent",
    "OpenEvent",
    "ProtocolError",
    "RequestTimeoutError",
    "RestClient",
    "RestError",
    "Subscription",
    "__version__",
]

logging.getLogger("deriv_sdk").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name == "RestClient":
        from .rest import RestClient

        return RestClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
