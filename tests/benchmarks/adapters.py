"""The benchmarked clients, each behind one small synchronous interface.

Every adapter is built as ``Adapter(threaded=False, message_listener=False, **variant)``
(nothing touches the network) and offers:

- ``connect(url)``: construct the library's objects and block until the connection is open
  (this is the span that the "setup" scenario times);
- ``stream(on_tick)``: subscribe to ticks (``req_id`` 1) and call ``on_tick(decoded_dict)`` for
  every message, on whatever thread the library delivers it; returns at once, or once the
  stream is done for clients that read on the caller's thread;
- ``subscribe(payload, listener)``: start a stream, block until its first reply; ``listener``
  gets that and every later message of the stream (the mixed scenario);
- ``request(payload) -> dict``: one round trip matched by ``req_id``; safe from several threads
  when the adapter was built with ``threaded=True``;
- ``close()``;
- ``messages``: with ``message_listener=True``, the count of every message the client's
  "message listener" saw (``deriv_sdk``: a real ``on("message")`` listener; WebSocketApp: its
  ``on_message``; the floor: its read loop).

The libraries are imported lazily, so this module also loads in the python-deriv-api venv, which
has no websocket-client. python-deriv-api is asyncio-only: see ``derivapi_stream`` and
``derivapi_rtt`` at the end. The floors (a minimal hand-written client, the raw drain) are in
``floor.py``.
"""

from __future__ import annotations

import inspect
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from floor import FloorClient, RawDrainClient

SUBSCRIBE = {"ticks": "R_50", "subscribe": 1, "req_id": 1}
TIMEOUT = 30.0
Tick = Callable[[Any], None]
DEFAULT = "default"  # max_queue: leave the keyword out (the default a user gets)


def wsaccel_in_use() -> bool:
    """True when websocket-client actually took wsaccel's UTF-8 validator and masker."""
    import websocket._abnf
    import websocket._utils

    return hasattr(websocket._utils, "Utf8Validator") and hasattr(
        websocket._abnf, "XorMaskerSimple"
    )


def check_wsaccel(expect: str) -> None:
    """Fail loudly when websocket-client's wsaccel use is not what this client claims."""
    if expect == "any":
        return
    used = wsaccel_in_use()
    if expect == "required" and not used:
        raise RuntimeError(
            "wsaccel is required for this client but websocket-client is not using it "
            "(install it with `pip install --target DIR wsaccel`, pass --wsaccel-path DIR)"
        )
    if expect == "forbidden" and used:
        raise RuntimeError("wsaccel is in use, but this client is the plain install without it")


class _Pending:
    """req_id -> (Event, slot) table: the obvious correct way to match replies to callers."""

    def __init__(self) -> None:
        self._ids = itertools.count(1000)  # below 1000: the streams' req_ids
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list[Any]]] = {}

    def add(self, req_id: int | None = None) -> tuple[int, threading.Event, list[Any]]:
        event, slot = threading.Event(), list[Any]()
        with self._lock:
            if req_id is None:
                req_id = next(self._ids)
            self._waiting[req_id] = (event, slot)
        return req_id, event, slot

    def resolve(self, data: dict[str, Any]) -> bool:
        with self._lock:
            entry = self._waiting.pop(data.get("req_id"), None)  # type: ignore[arg-type]
        if entry is None:
            return False
        entry[1].append(data)
        entry[0].set()
        return True

    def request(
        self, send: Callable[[str], Any], payload: dict[str, Any], req_id: int | None = None
    ) -> dict[str, Any]:
        req_id, event, slot = self.add(req_id)
        send(json.dumps({**payload, "req_id": req_id}))
        if not event.wait(TIMEOUT):
            raise TimeoutError(f"no reply to req_id {req_id}")
        return slot[0]  # type: ignore[no-any-return]


class WebSocketAppClient:
    """websocket-client ``WebSocketApp`` with default settings, ``json.loads`` in on_message.

    Replies are matched by a ``_Pending`` table; stream messages go to their stream's callback
    by ``req_id`` (the routing a bot writes on top of WebSocketApp).
    """

    def __init__(
        self, threaded: bool = False, message_listener: bool = False, wsaccel: str = "any"
    ) -> None:
        self._pending = _Pending()
        self._on_tick: Tick | None = None
        self._streams: dict[Any, Tick] = {}
        self._stream_ids = itertools.count(1)
        self._count = message_listener
        self._wsaccel = wsaccel
        self.messages = 0

    def connect(self, url: str) -> None:
        import websocket

        check_wsaccel(self._wsaccel)
        opened = threading.Event()
        self.app = websocket.WebSocketApp(
            url, on_open=lambda ws: opened.set(), on_message=self._on_message
        )
        self._thread = threading.Thread(target=self.app.run_forever, daemon=True)
        self._thread.start()
        if not opened.wait(TIMEOUT):
            raise TimeoutError("WebSocketApp did not open")

    def _on_message(self, ws: Any, message: str) -> None:
        data = json.loads(message)
        on_tick = self._on_tick
        if on_tick is not None:
            on_tick(data)
            return
        if self._count:
            self.messages += 1
        if not self._pending.resolve(data):
            listener = self._streams.get(data.get("req_id"))
            if listener is not None:
                listener(data)

    def stream(self, on_tick: Tick) -> None:
        self._on_tick = on_tick
        self.app.send(json.dumps(SUBSCRIBE))

    def subscribe(self, payload: dict[str, Any], listener: Tick) -> dict[str, Any]:
        req_id = next(self._stream_ids)
        self._streams[req_id] = listener  # before sending: later messages go straight to it
        first = self._pending.request(self.app.send, {**payload, "subscribe": 1}, req_id)
        listener(first)
        return first

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self._pending.request(self.app.send, payload)

    def close(self) -> None:
        # Closing is never timed, so do not wait for it: run_forever's thread often swallows
        # the server's close frame (close() then waits its default 3 s for it) or sits in a
        # select() with a 10 s timeout on the closed socket; it is a daemon thread.
        self.app.close(timeout=0.05)
        self._thread.join(0.1)


class LowLevelClient:
    """websocket-client ``create_connection`` + ``recv()`` on the caller's thread.

    With ``threaded=True`` (the 8-thread scenario) one reader thread reads and resolves a
    ``_Pending`` table instead.
    """

    def __init__(
        self, threaded: bool = False, message_listener: bool = False, wsaccel: str = "any"
    ) -> None:
        self._threaded = threaded
        self._pending = _Pending()
        self._ids = itertools.count(1000)
        self._wsaccel = wsaccel
        self.messages = 0

    def connect(self, url: str) -> None:
        import websocket

        check_wsaccel(self._wsaccel)
        self.ws = websocket.create_connection(url)
        if self._threaded:
            self._reader = threading.Thread(target=self._read_loop, daemon=True)
            self._reader.start()

    def _read_loop(self) -> None:
        import websocket

        try:
            while True:
                message = self.ws.recv()
                if not message:  # the close frame
                    return
                self._pending.resolve(json.loads(message))
        except (OSError, websocket.WebSocketException):
            return

    def stream(self, on_tick: Tick) -> None:
        """Reads on the caller's thread: returns after the whole stream (the harness knows)."""
        self.ws.send(json.dumps(SUBSCRIBE))
        recv, loads = self.ws.recv, json.loads
        while not getattr(on_tick, "finished", False):
            on_tick(loads(recv()))

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._threaded:
            return self._pending.request(self.ws.send, payload)
        req_id = next(self._ids)
        self.ws.send(json.dumps({**payload, "req_id": req_id}))
        while True:
            data: dict[str, Any] = json.loads(self.ws.recv())
            if data.get("req_id") == req_id:
                return data

    def close(self) -> None:
        self.ws.close()
        if self._threaded:
            self._reader.join(TIMEOUT)


def sdk_parameter(name: str) -> inspect.Parameter | None:
    """The installed ``deriv_sdk.Connection``'s keyword ``name``, None when it has none."""
    from deriv_sdk import Connection

    return inspect.signature(Connection).parameters.get(name)


class _MessageCount:
    """The ``message`` listener of a bot that only needs to see traffic: reads ``data``, counts."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, event: Any) -> None:
        if event.data is not None:
            self.n += 1


class DerivSdkClient:
    """``deriv_sdk.Connection`` through its public API, with the defaults a user gets.

    ``Connection(url=...)``: keepalive on, reconnect on, default ``max_queue``. Only
    ``max_queue`` can be overridden (``None``: unbounded), and only when the installed
    ``Connection`` has that keyword; otherwise ``connect()`` raises (never measured silently
    as something else). The stream goes through ``subscribe(payload, listener)``.
    """

    def __init__(
        self,
        threaded: bool = False,
        message_listener: bool = False,
        max_queue: int | str | None = DEFAULT,
    ) -> None:
        self._count = _MessageCount() if message_listener else None
        self._max_queue = max_queue

    @property
    def messages(self) -> int:
        return self._count.n if self._count is not None else 0

    def connect(self, url: str) -> None:
        from deriv_sdk import Connection

        kwargs: dict[str, Any] = {}
        if self._max_queue != DEFAULT:
            if sdk_parameter("max_queue") is None:
                raise RuntimeError("the installed deriv_sdk.Connection has no max_queue keyword")
            kwargs["max_queue"] = self._max_queue
        self.conn = Connection(url=url, **kwargs)
        if self._count is not None:
            self.conn.on("message", self._count)
        self.conn.connect(timeout=TIMEOUT)

    def stream(self, on_tick: Tick) -> None:
        # subscribe() blocks until the first reply; the feeder sends the whole burst right
        # behind it, so the first tick is counted by on_tick like every other
        self.conn.subscribe({"ticks": "R_50", "req_id": 1}, on_tick, timeout=TIMEOUT)

    def subscribe(self, payload: dict[str, Any], listener: Tick) -> Any:
        return self.conn.subscribe(payload, listener, timeout=TIMEOUT)

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.conn.request(payload)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.conn.close()


ADAPTERS: dict[str, type[Any]] = {
    "wsapp": WebSocketAppClient,
    "wsc-lowlevel": LowLevelClient,
    "deriv_sdk": DerivSdkClient,
    "floor": FloorClient,
    "raw-drain": RawDrainClient,
}


def _derivapi(url: str) -> Any:
    from deriv_api import DerivAPI

    parts = urlsplit(url)
    return DerivAPI(endpoint=f"ws://{parts.netloc}", app_id=1089)


async def derivapi_stream(url: str, on_tick: Any) -> None:
    """python-deriv-api: ``subscribe()`` and an Rx observer that hands each message on."""
    import asyncio

    api = _derivapi(url)
    loop = asyncio.get_running_loop()
    finished = loop.create_future()

    def finish() -> None:
        if not finished.done():
            finished.set_result(None)

    on_tick.on_finish = finish
    source = await api.subscribe({"ticks": "R_50", "req_id": 1})
    source.subscribe(on_tick)
    await asyncio.wait_for(finished, 600)
    await api.clear()


async def derivapi_rtt(url: str, count: int, warmup: int) -> list[float]:
    """python-deriv-api: ``count`` sequential ``send({"ping": 1})``; latencies in seconds."""
    api = _derivapi(url)
    await api.send({"ping": 1})
    out = []
    for i in range(warmup + count):
        start = time.perf_counter()
        reply = await api.send({"ping": 1})
        if i >= warmup:
            out.append(time.perf_counter() - start)
    assert reply["ping"] == "pong", reply
    await api.clear()
    return out
