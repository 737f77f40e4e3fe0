"""The benchmarked clients, each behind one small synchronous interface.

Every adapter is built with no arguments (nothing touches the network) and offers:

- ``connect(url)``: construct the library's objects and block until the connection is open
  (this is the span that the "setup" scenario times);
- ``stream(on_tick)``: subscribe to ticks (``req_id`` 1) and call ``on_tick(decoded_dict)`` for
  every message, on whatever thread the library delivers it; returns at once;
- ``request(payload) -> dict``: one round trip matched by ``req_id``; safe from several threads
  when the adapter was built with ``threaded=True``;
- ``close()``.

The libraries are imported lazily, so this module also loads in the python-deriv-api venv, which
has no websocket-client. python-deriv-api is asyncio-only: see ``derivapi_stream`` and
``derivapi_rtt`` at the end.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

SUBSCRIBE = {"ticks": "R_100", "subscribe": 1, "req_id": 1}
TIMEOUT = 30.0
Tick = Callable[[Any], None]


class _Pending:
    """req_id -> (Event, slot) table: the obvious correct way to match replies to callers."""

    def __init__(self) -> None:
        self._ids = itertools.count(1000)  # 1 is the stream's req_id
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[threading.Event, list[Any]]] = {}

    def add(self) -> tuple[int, threading.Event, list[Any]]:
        event, slot = threading.Event(), []
        with self._lock:
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

    def request(self, send: Callable[[str], Any], payload: dict[str, Any]) -> dict[str, Any]:
        req_id, event, slot = self.add()
        send(json.dumps({**payload, "req_id": req_id}))
        if not event.wait(TIMEOUT):
            raise TimeoutError(f"no reply to req_id {req_id}")
        return slot[0]  # type: ignore[no-any-return]


class WebSocketAppClient:
    """websocket-client ``WebSocketApp`` with default settings, ``json.loads`` in on_message."""

    def __init__(self, threaded: bool = False) -> None:
        self._pending = _Pending()
        self._on_tick: Tick | None = None

    def connect(self, url: str) -> None:
        import websocket

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
        else:
            self._pending.resolve(data)

    def stream(self, on_tick: Tick) -> None:
        self._on_tick = on_tick
        self.app.send(json.dumps(SUBSCRIBE))

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

    def __init__(self, threaded: bool = False) -> None:
        self._threaded = threaded
        self._pending = _Pending()
        self._ids = itertools.count(1000)

    def connect(self, url: str) -> None:
        import websocket

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


class DerivSdkClient:
    """``deriv_sdk.Connection`` as API.md describes it (no keepalive, no reconnect)."""

    def __init__(self, threaded: bool = False) -> None:
        pass

    def connect(self, url: str) -> None:
        from deriv_sdk import Connection

        self.conn = Connection(url=url, keepalive_interval=None, reconnect=False)
        self.conn.connect(timeout=TIMEOUT)

    def stream(self, on_tick: Tick) -> None:
        self.conn.on("message", lambda event: on_tick(event.data))
        self.conn.send(SUBSCRIBE)

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.conn.request(payload)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.conn.close()


def handshake(url: str) -> socket.socket:
    """Open a plain TCP socket and do a hand-written client handshake (no websocket library)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing after the headers may be swallowed
        if not chunk:
            raise ConnectionError("handshake: connection closed")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake refused: {head[:40]!r}")
    return sock


def masked_frame(text: str) -> bytes:
    """A final, masked client text frame (payload < 126 bytes, all-zero mask)."""
    payload = text.encode()
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + b"\0\0\0\0" + payload


class RawDrainClient:
    """Plain socket, hand-written handshake; walks frame headers and counts frames, no decoding.

    Shows what the feeder and loopback can deliver: it must be far above every real client.
    """

    def __init__(self, threaded: bool = False) -> None:
        self.frames = 0
        self.bytes = 0
        self.first = self.last = 0.0

    def connect(self, url: str) -> None:
        self.sock = handshake(url)

    def drain(self, count: int) -> None:
        self.sock.sendall(masked_frame(json.dumps(SUBSCRIBE)))
        buf = bytearray()
        frames = 0
        while frames < count:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                break
            if not self.bytes:
                self.first = time.perf_counter()
            self.bytes += len(chunk)
            buf += chunk
            pos, size = 0, len(buf)
            while size - pos >= 4:
                length = buf[pos + 1] & 0x7F
                if length == 126:
                    end = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
                elif length == 127:
                    if size - pos < 10:
                        break
                    end = pos + 10 + struct.unpack_from("!Q", buf, pos + 2)[0]
                else:
                    end = pos + 2 + length
                if end > size:
                    break
                pos = end
                frames += 1
            del buf[:pos]
        self.last = time.perf_counter()
        self.frames = frames

    def close(self) -> None:
        self.sock.close()


ADAPTERS: dict[str, type[Any]] = {
    "wsapp": WebSocketAppClient,
    "wsc-lowlevel": LowLevelClient,
    "deriv_sdk": DerivSdkClient,
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
    on_tick.on_finish = lambda: finished.done() or finished.set_result(None)
    source = await api.subscribe({"ticks": "R_100", "req_id": 1})
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
