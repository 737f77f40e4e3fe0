"""Regression tests from a review: hostile frames, stalled peers, races around close()."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deriv_sdk import Connection, ConnectionClosedError, ProtocolError
from deriv_sdk.testing import LocalServer
from tests.wsserver import ScriptServer

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class RawServer:
    """A TCP server on 127.0.0.1 that answers the upgrade (or not) and then never reads."""

    def __init__(self, upgrade: bool) -> None:
        self.upgrade = upgrade
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"ws://127.0.0.1:{self.sock.getsockname()[1]}/websockets/v3?app_id=1"
        self.conns: list[socket.socket] = []
        self.accepted = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        self.accepted.set()
        if not self.upgrade:
            return
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                return
            head += data
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()
        self.thread.join(5)


@pytest.fixture
def raw_upgrading() -> Iterator[RawServer]:
    server = RawServer(upgrade=True)
    yield server
    server.close()


@pytest.fixture
def raw_silent() -> Iterator[RawServer]:
    server = RawServer(upgrade=False)
    yield server
    server.close()


def sdk_threads() -> list[str]:
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("deriv_sdk-") and not t.name.startswith("deriv_sdk-server")
    ]


@pytest.mark.parametrize(
    "frame",
    [
        {"req_id": [1], "msg_type": "x"},
        {"req_id": True, "msg_type": "x"},
        {"req_id": 1.0, "msg_type": "ping"},
        {"req_id": 99, "subscription": "not-a-dict"},
        {"req_id": 1, "subscription": {"id": 5}, "msg_type": "tick"},
        ["a", "list"],
        "[" * 100_000 + "]" * 100_000,  # deeper than json's recursion limit
    ],
)
def test_hostile_frames_never_kill_the_connection(script_server: ScriptServer, frame: Any) -> None:
    def script(ws: Any, data: Any) -> None:
        if data.get("req_id") == 1:
            ws.send(frame if isinstance(frame, str) else json.dumps(frame))
        reply = {"echo_req": data, "msg_type": "ping", "ping": "pong", "req_id": data["req_id"]}
        ws.send(json.dumps(reply))

    script_server.handler = script
    conn = Connection(url=script_server.url, keepalive_interval=None, reconnect=False)
    errors: list[Any] = []
    conn.on("error", errors.append)
    with conn:
        assert conn.request({"ping": 1})["req_id"] == 1
        assert conn.request({"ping": 1})["req_id"] == 2  # the reader survived the frame
        assert conn.ready_state == Connection.OPEN
    assert all(isinstance(e.error, ProtocolError) for e in errors)


def test_a_request_waiting_for_open_fails_at_once_when_the_connection_ends(
    script_server: ScriptServer,
) -> None:
    script_server.reject_next(403)
    conn = Connection(url=script_server.url, keepalive_interval=None, request_timeout=3)
    conn.on("close", lambda event: None)  # a listener: the dispatch thread starts at the end
    conn.connect()
    started = time.monotonic()
    with pytest.raises(ConnectionClosedError):
        conn.request({"ping": 1})
    assert time.monotonic() - started < 1.0
    conn.close()


def test_a_callers_req_id_on_a_stream_is_never_reused(deriv_server: LocalServer) -> None:
    with Connection(url=deriv_server.url, keepalive_interval=None) as conn:
        seen: list[str] = []
        sub = conn.subscribe({"ticks": "R_100", "req_id": 3}, lambda m: seen.append(m["msg_type"]))
        answers = [conn.request({"time": 1}) for _ in range(4)]
        assert 3 not in [a["req_id"] for a in answers]
        with pytest.raises(ValueError):
            conn.request({"time": 1, "req_id": 3})
        assert sub.active and set(seen) == {"tick"}


def test_close_from_the_open_listener_of_a_blocking_connect(deriv_server: LocalServer) -> None:
    for _ in range(20):
        conn = Connection(url=deriv_server.url, keepalive_interval=None)
        conn.on("open", lambda event: event.target.close())
        conn.connect(timeout=5)
        assert conn.wait(5)
        assert sdk_threads() == []


def test_close_interrupts_a_handshake_that_gets_no_answer(raw_silent: RawServer) -> None:
    conn = Connection(url=raw_silent.url, keepalive_interval=None, request_timeout=30)
    conn.connect()
    assert raw_silent.accepted.wait(5)
    time.sleep(0.1)  # only to let the handshake block in its read
    started = time.monotonic()
    conn.close()
    assert time.monotonic() - started < 1.0
    assert sdk_threads() == []


def test_a_peer_that_stops_reading_is_declared_dead_and_close_returns(
    raw_upgrading: RawServer,
) -> None:
    conn = Connection(
        url=raw_upgrading.url, keepalive_interval=0.5, keepalive_timeout=0.5, reconnect=False
    )
    closed = threading.Event()
    conn.on("close", lambda event: closed.set())
    conn.connect(timeout=5)
    sender = threading.Thread(target=lambda: _send_big(conn))
    sender.start()  # blocks in sendall: the peer's window is full
    assert closed.wait(5), "the keepalive did not notice the stalled peer"
    sender.join(5)
    started = time.monotonic()
    conn.close()
    assert time.monotonic() - started < 2.0
    assert sdk_threads() == []


def _send_big(conn: Connection) -> None:
    try:
        conn.send("x" * (32 * 1024 * 1024))
    except (ConnectionClosedError, Exception):
        pass


def test_close_returns_when_the_peers_window_is_full(raw_upgrading: RawServer) -> None:
    # Regression (a flaky test): this test used to flip the SDK's own socket to
    # non-blocking while its reader used it (EAGAIN read as EOF). Now it fills the window
    # through the public API: a thread blocks in send() holding the send lock.
    conn = Connection(url=raw_upgrading.url, keepalive_interval=None, reconnect=False)
    conn.connect(timeout=5)
    sender = threading.Thread(target=lambda: _send_big(conn), name="test-sender")
    sender.start()
    sender.join(0.5)
    assert sender.is_alive(), "send() did not block: the peer's window is not full"
    started = time.monotonic()
    conn.close()
    assert time.monotonic() - started < 1.5
    sender.join(5)
    assert conn.ready_state == Connection.CLOSED and sdk_threads() == []


def test_open_comes_before_anything_a_blocking_connect_caller_does_next(
    deriv_server: LocalServer,
) -> None:
    for _ in range(30):
        order: list[str] = []
        record = order.append
        conn = Connection(url=deriv_server.url, keepalive_interval=None)
        conn.on("open", lambda event, record=record: record("open"))
        conn.on("close", lambda event, record=record: record("close"))
        conn.connect(timeout=5)
        conn.send_request({"ping": 1}, lambda result, record=record: record(type(result).__name__))
        conn.close()
        assert order[0] == "open" and order[-1] == "close", order
        assert len(order) == 3  # the callback ran exactly once, answer or error
