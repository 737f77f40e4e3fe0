"""A scriptable WebSocket server on 127.0.0.1 for the client's edge-case tests.

By default it answers Deriv's ``{"ping": 1}`` like Deriv does (echo_req, msg_type, req_id)
and records every frame it receives. A test replaces ``handler`` to script anything else,
or calls ``reject_next(status)`` to refuse the next handshake.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

Handler = Callable[[ServerConnection, Any], None]


def pong(ws: ServerConnection, data: Any) -> None:
    """The default script: answer pings as Deriv does, ignore the rest."""
    if isinstance(data, dict) and "ping" in data:
        reply: dict[str, Any] = {"echo_req": data, "msg_type": "ping", "ping": "pong"}
        if "req_id" in data:
            reply["req_id"] = data["req_id"]
        ws.send(json.dumps(reply))


class ScriptServer:
    def __init__(self, handler: Handler = pong) -> None:
        self.handler = handler
        self.frames: list[str | bytes] = []  # every frame received, in order
        self.connections: list[ServerConnection] = []
        self.received = threading.Condition()
        self._reject: list[int] = []
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/websockets/v3?app_id=1089"

    def reject_next(self, status: int) -> None:
        self._reject.append(status)

    def wait_frames(self, count: int, timeout: float = 5.0) -> list[str | bytes]:
        """Blocks until at least ``count`` frames arrived; returns them all."""
        with self.received:
            assert self.received.wait_for(lambda: len(self.frames) >= count, timeout), (
                f"got {len(self.frames)} frames, expected {count}"
            )
            return list(self.frames)

    def json_frames(self) -> list[Any]:
        with self.received:
            return [json.loads(f) for f in self.frames if isinstance(f, str)]

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self._reject:
            status = self._reject.pop(0)
            return conn.respond(status, f"rejected with {status}\n")
        return None

    def _handle(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        for frame in ws:
            with self.received:
                self.frames.append(frame)
                self.received.notify_all()
            try:
                data = json.loads(frame) if isinstance(frame, str) else frame
            except ValueError:
                data = frame
            self.handler(ws, data)

    def __enter__(self) -> ScriptServer:
        self._server = serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            close_timeout=1.0,  # loopback: a client that has not answered by then will not
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="script-server", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        for ws in self.connections:
            ws.close()
        self._thread.join(5)


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> bool:
    """Polls what only a server can see (its log of requests, its open sockets) until it
    holds or ``timeout`` seconds pass. Returns whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
