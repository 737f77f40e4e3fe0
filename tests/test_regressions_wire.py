"""Regressions of the core issue, on the wire: handshakes, close() in every phase, RFC 6455.

Each test names the defect it shows fixed; each failed on the release before the fix.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from deriv_sdk import ConnectError, Connection, ProtocolError
from deriv_sdk.testing import LocalServer
from tests.rawserver import OP_CLOSE, OP_PING, OP_TEXT, Peer, RawServer, frame, text
from tests.support import Events, sdk_threads

# ----------------------------------------------------------------- connect(timeout=T)


def _trickle_101(peer: Peer) -> None:
    peer.read_head()
    for byte in b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n":
        peer.send(bytes([byte]))
        time.sleep(0.2)  # the slowloris: each byte well within any per-read timeout


def _endless_headers(peer: Peer) -> None:
    peer.read_head()
    peer.send(b"HTTP/1.1 101 Switching Protocols\r\n")
    while True:
        peer.send(b"X-Forever: yes\r\n")
        time.sleep(0.05)


@pytest.mark.parametrize("script", [_trickle_101, _endless_headers], ids=["trickle", "endless"])
def test_connect_timeout_is_a_total_deadline(script: Any) -> None:
    # Regression: connect(timeout=2) applied its timeout per socket operation: a server
    # trickling its 101 one byte every 0.5 s, or sending headers forever, kept it for 12 s+.
    with RawServer(script) as server:
        conn = Connection(url=server.url, keepalive_interval=None)
        started = time.monotonic()
        with pytest.raises(ConnectError, match="timed out"):
            conn.connect(timeout=1.0)
        assert time.monotonic() - started < 1.5
        assert conn.ready_state == Connection.CLOSED and sdk_threads() == []


# ----------------------------------------------------------------- close() in every phase


def _silent(peer: Peer) -> None:
    peer.sock.recv(1)  # never speaks (no TLS ServerHello, no HTTP answer)


@pytest.fixture(scope="module")
def tls_client() -> Any:
    ca = trustme.CA()
    return ca


def _close_within(conn: Connection, bound: float = 1.5) -> None:
    closer = threading.Thread(target=conn.close, name="test-closer")  # "from any thread"
    started = time.monotonic()
    closer.start()
    closer.join(5)
    assert not closer.is_alive()
    assert time.monotonic() - started < bound
    assert conn.ready_state == Connection.CLOSED
    assert sdk_threads() == []


def test_close_interrupts_a_tls_handshake_that_never_gets_an_answer() -> None:
    # Regression: close() could not interrupt DNS/TCP/TLS: against a server that never
    # speaks TLS it took 6 s, returned in CLOSING and left the io thread alive 20 s more.
    with RawServer(_silent) as server:
        conn = Connection(url=server.url.replace("ws://", "wss://"), keepalive_interval=None)
        conn.connect()
        assert server.wait_accepted()
        time.sleep(0.1)  # only to let the TLS handshake block in its read
        _close_within(conn)


def test_close_interrupts_a_tcp_connect_that_hangs() -> None:
    # A listening socket that never accepts, with a full backlog: SYNs are dropped and the
    # client's connect() hangs in the TCP handshake.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue (its length is backlog + 1 on Linux)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)  # only to let the fillers settle in the queue
        conn = Connection(url=f"ws://127.0.0.1:{port}/", keepalive_interval=None)
        conn.connect()
        time.sleep(0.3)  # only to let connect() block in the TCP handshake
        _close_within(conn)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_close_interrupts_the_http_upgrade() -> None:
    with RawServer(lambda peer: (peer.read_head(), _silent(peer))) as server:
        conn = Connection(url=server.url, keepalive_interval=None)
        conn.connect()
        assert server.wait_accepted()
        time.sleep(0.1)  # only to let the upgrade block in its read
        _close_within(conn)


def test_close_while_open_with_a_server_that_never_answers_the_close_frame() -> None:
    def script(peer: Peer) -> None:
        peer.accept()
        while peer.read_frame()[0] != -1:
            pass  # reads everything, answers nothing (no close echo)

    with RawServer(script) as server:
        conn = Connection(url=server.url, keepalive_interval=None)
        conn.connect(timeout=5)
        _close_within(conn)


def test_close_during_backoff(deriv_server: LocalServer) -> None:
    conn = Connection(url=deriv_server.url, keepalive_interval=None, reconnect_delay=30.0)
    events = Events(conn)
    conn.connect(timeout=5)
    deriv_server.refuse(100, 503)
    deriv_server.drop()
    events.wait("close")
    _close_within(conn)


def test_close_while_restoring(deriv_server: LocalServer) -> None:
    conn = Connection(url=deriv_server.url, keepalive_interval=None, reconnect_delay=0.01)
    events = Events(conn)
    conn.connect(timeout=5)
    conn.subscribe({"ticks": "R_100"}, lambda m: None)
    deriv_server.stall()  # the re-subscribe will get no answer: the restore waits
    deriv_server.drop()
    assert _wait(lambda: len(deriv_server.requests) >= 2)  # the re-subscribe arrived
    assert conn.ready_state == Connection.CONNECTING and not events.of("open")[1:]
    _close_within(conn)
    deriv_server.resume()


def test_close_racing_connect_with_a_timeout(deriv_server: LocalServer) -> None:
    # Regression: close() racing connect(timeout=...) raised "cannot join thread before it
    # is started" (47 of 300 runs) or returned with the connection still CLOSING (159).
    problems: list[str] = []
    for i in range(150):
        conn = Connection(url=deriv_server.url, keepalive_interval=None)
        outcome: list[BaseException | None] = []

        def connect(conn: Connection = conn, outcome: list[Any] = outcome) -> None:
            try:
                conn.connect(timeout=5)
                outcome.append(None)
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=connect)
        thread.start()
        if i % 3:
            time.sleep(0.0005 * (i % 7))  # only to spread close() over the phases
        try:
            conn.close()
        except Exception as exc:
            problems.append(f"close raised {exc!r}")
        thread.join(5)
        if outcome and outcome[0] is not None and not isinstance(outcome[0], ConnectError):
            problems.append(f"connect raised {outcome[0]!r}")
        if conn.ready_state != Connection.CLOSED:
            problems.append(f"state {conn.ready_state} after close()")
    assert problems == []
    assert sdk_threads() == []


def _wait(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ----------------------------------------------------------------- RFC 6455


@pytest.fixture
def scripted() -> Iterator[list[RawServer]]:
    servers: list[RawServer] = []
    yield servers
    for server in servers:
        server.close()


def _run(scripted: list[RawServer], after_open: bytes) -> tuple[Connection, Events, Peer]:
    """A connection to a server that sends ``after_open`` once open, then reads."""
    ready = threading.Event()
    peers: list[Peer] = []

    def script(peer: Peer) -> None:
        peer.accept()
        peers.append(peer)
        ready.set()
        peer.send(after_open)
        while peer.read_frame()[0] not in (-1, OP_CLOSE):
            pass
        time.sleep(0.2)  # only to keep the socket open while the client finishes

    server = RawServer(script)
    scripted.append(server)
    conn = Connection(url=server.url, keepalive_interval=None, reconnect=False)
    events = Events(conn)
    conn.connect(timeout=5)
    assert ready.wait(5)
    return conn, events, peers[0]


def _close_sent(peer: Peer) -> tuple[int, bytes]:
    assert _wait(lambda: any(op == OP_CLOSE for op, _ in peer.frames))
    payload = next(p for op, p in peer.frames if op == OP_CLOSE)
    return int.from_bytes(payload[:2], "big") if payload else 1005, payload[2:]


def test_invalid_utf8_text_fails_the_connection_with_1007(scripted: list[RawServer]) -> None:
    # Regression: it was reported as "not JSON" with the bytes replaced, connection open.
    conn, events, peer = _run(scripted, frame(OP_TEXT, b'{"a": "\xff"}'))
    assert conn.wait(5)
    assert _close_sent(peer)[0] == 1007
    (error,) = [e.error for e in events.of("error")]
    assert isinstance(error, ProtocolError) and "UTF-8" in str(error)
    (close,) = events.of("close")
    assert close.code == 1007 and not close.was_clean


def test_valid_utf8_that_is_not_json_keeps_the_connection(scripted: list[RawServer]) -> None:
    conn, events, _ = _run(scripted, text("not json") + text({"msg_type": "x"}))
    events.wait("message")
    assert conn.ready_state == Connection.OPEN
    assert isinstance(events.of("error")[0].error, ProtocolError)
    conn.close()


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        ((1005).to_bytes(2, "big"), 1002),
        ((1006).to_bytes(2, "big"), 1002),
        ((1015).to_bytes(2, "big"), 1002),
        ((999).to_bytes(2, "big"), 1002),
        ((5000).to_bytes(2, "big"), 1002),
        (b"\x03", 1002),  # a one-byte payload
        ((1000).to_bytes(2, "big") + b"\xff", 1007),  # a reason that is not UTF-8
    ],
    ids=["1005", "1006", "1015", "999", "5000", "one-byte", "bad-utf8-reason"],
)
def test_an_invalid_close_frame_is_answered_with_1002_or_1007_never_echoed(
    scripted: list[RawServer], payload: bytes, answer: int
) -> None:
    # Regression: forbidden close codes were echoed back on the wire, and a one-byte
    # payload or an invalid UTF-8 reason were accepted as clean closes.
    conn, events, peer = _run(scripted, frame(OP_CLOSE, payload))
    assert conn.wait(5)
    assert _close_sent(peer)[0] == answer
    (close,) = events.of("close")
    assert close.code == answer and not close.was_clean


def test_a_valid_close_frame_is_echoed_with_its_code(scripted: list[RawServer]) -> None:
    conn, events, peer = _run(scripted, frame(OP_CLOSE, (4001).to_bytes(2, "big") + b"bye"))
    assert conn.wait(5)
    assert _close_sent(peer) == (4001, b"")
    (close,) = events.of("close")
    assert (close.code, close.reason, close.was_clean) == (4001, "bye", True)


def test_an_empty_close_frame_is_echoed_empty(scripted: list[RawServer]) -> None:
    conn, events, peer = _run(scripted, frame(OP_CLOSE, b""))
    assert conn.wait(5)
    assert _close_sent(peer) == (1005, b"")  # no code on the wire: 1005 is never sent
    assert events.of("close")[0].code == 1005


def test_frames_before_a_violation_are_delivered_first(scripted: list[RawServer]) -> None:
    # Regression: frames parsed in the same read just before a violation were dropped.
    burst = text({"n": 1}) + text({"n": 2}) + frame(OP_TEXT, b"{}", mask=b"abcd")
    conn, events, peer = _run(scripted, burst)
    assert conn.wait(5)
    assert [e.data for e in events.of("message")] == [{"n": 1}, {"n": 2}]
    assert _close_sent(peer)[0] == 1002


def test_a_close_event_with_1006_is_never_clean(deriv_server: LocalServer) -> None:
    conn = Connection(url=deriv_server.url, keepalive_interval=None, reconnect=False)
    events = Events(conn)
    conn.connect(timeout=5)
    deriv_server.drop()
    assert conn.wait(5)
    (close,) = events.of("close")
    assert close.code == 1006 and close.was_clean is False


# ----------------------------------------------------------------- the reader never blocks


def test_the_reader_keeps_reading_while_a_send_is_stuck(scripted: list[RawServer]) -> None:
    # Regression: the io thread itself sent pongs (and close echoes, and the forget of
    # abandoned streams) with a blocking sendall: behind a send stuck on a full window it
    # stopped reading. Now it posts them and reads on.
    ping = threading.Event()

    def script(peer: Peer) -> None:
        peer.accept()
        ping.wait(5)
        peer.send(frame(OP_PING, b"hello") + text({"msg_type": "after-ping"}))
        time.sleep(3)  # never reads: the client's big send stays stuck

    server = RawServer(script, rcvbuf=4096)
    scripted.append(server)
    conn = Connection(url=server.url, keepalive_interval=None, reconnect=False)
    events = Events(conn)
    conn.connect(timeout=5)
    sender = threading.Thread(target=lambda: _send_big(conn), daemon=True)
    sender.start()
    time.sleep(0.3)  # only to let the send block on the full window
    ping.set()
    got = events.wait("message", timeout=2)
    assert got[0].data == {"msg_type": "after-ping"}
    conn.close()
    sender.join(5)


def _send_big(conn: Connection) -> None:
    try:
        conn.send("x" * (16 * 1024 * 1024))
    except Exception:
        pass


def test_userinfo_in_the_url_is_never_shown() -> None:
    # Regression: ws://bob:secret@... showed the password in repr(conn) and ConnectError.
    conn = Connection(url="ws://bob:s3cret@127.0.0.1:1/x", keepalive_interval=None)
    assert "s3cret" not in repr(conn) and "s3cret" not in str(conn.url)
    with pytest.raises(ConnectError) as info:
        conn.connect(timeout=2)
    assert "s3cret" not in str(info.value) and "s3cret" not in repr(info.value)


def test_language_and_brand_are_url_encoded() -> None:
    conn = Connection(1089, language="en&x=1", brand="a b")
    assert conn.url is not None
    assert "l=EN%26X%3D1" in conn.url and "brand=a+b" in conn.url


def test_a_failed_handshake_says_what_the_server_said() -> None:
    def script(peer: Peer) -> None:
        peer.read_head()
        body = json.dumps({"errors": [{"status": 401, "message": "Invalid or expired OTP"}]})
        peer.send(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
        )

    with RawServer(script) as server:
        conn = Connection(url=server.url, keepalive_interval=None)
        with pytest.raises(ConnectError) as info:
            conn.connect(timeout=5)
    assert info.value.status == 401
    assert "HTTP 401" in str(info.value) and "Invalid or expired OTP" in str(info.value)
