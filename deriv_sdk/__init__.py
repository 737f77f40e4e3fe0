"""deriv_sdk: a synchronous, callback-based Python SDK for the Deriv WebSocket API (v3).

The socket runs on background threads; listeners run on one dispatch thread; requests
block until their answer (or a typed exception). See the README for the whole picture.
"""

from __future__ import annotations

import logging

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

__version__ = "0.1.0"

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
    "RestError",
    "Subscription",
    "__version__",
]

logging.getLogger("deriv_sdk").addHandler(logging.NullHandler())
