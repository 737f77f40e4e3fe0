"""``deriv_sdk.testing``: a Deriv-compatible local server for offline development and tests.

Needs the ``testing`` extra (``pip install deriv-sync-sdk[testing]``: websockets, jsonschema).
It never imports the client side of ``deriv_sdk``, so a client bug cannot hide itself here.
One port serves Deriv's v3 API and its new API (REST, and the OTP-authenticated sockets):

    from deriv_sdk.testing import LocalServer

    with LocalServer(tokens=["my-token"], pats=["my-pat"], tick_interval=0.1) as server:
        print(server.url)          # ws://127.0.0.1:PORT/websockets/v3?app_id=1089&l=EN&brand=deriv
        print(server.options_url)  # ws://127.0.0.1:PORT/trading/v1/options/ws/public
        print(server.rest_url)     # http://127.0.0.1:PORT

``LocalServer`` is imported on first use (PEP 562): pytest imports this package for the
``deriv_server`` plugin of every test run, and that must work without the ``testing`` extra.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deriv_sdk.testing.server import LocalServer

__all__ = ["LocalServer"]

logging.getLogger("deriv_sdk.testing").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name == "LocalServer":
        from deriv_sdk.testing.server import LocalServer

        return LocalServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
