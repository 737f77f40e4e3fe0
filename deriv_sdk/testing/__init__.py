"""``deriv_sdk.testing``: a Deriv-compatible local server for offline development and tests.

Needs the ``testing`` extra (``pip install deriv-sync-sdk[testing]``: websockets, jsonschema).
It never imports the client side of ``deriv_sdk``, so a client bug cannot hide itself here.

    from deriv_sdk.testing import LocalServer

    with LocalServer(tokens=["my-token"], tick_interval=0.1) as server:
        print(server.url)   # ws://127.0.0.1:PORT/websockets/v3?app_id=1089&l=EN&brand=deriv
"""

import logging

from deriv_sdk.testing.server import LocalServer

__all__ = ["LocalServer"]

logging.getLogger("deriv_sdk.testing").addHandler(logging.NullHandler())
