"""Regressions found by the second review: each test failed on the code before its fix,
except two that guard what the fixes rewrote (a proxy with credentials, now our own
``CONNECT``; a request that expired waiting for the link, whose race is too narrow to hit).

Creating streams (a streaming ``buy``) on reconnect, the keepalive after a back-pressure
pause, a listener's request under back-pressure, req_ids of ended streams, tokens with
stray whitespace, the REST call's total deadline and abort, a trickling proxy, an expired
request that waited for the link, and data frames after our close frame.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deriv_sdk import (
    APIError,
    ConnectError,
    Connection,
    RequestTimeoutError,
    RestClient,
)
from deriv_sdk.testing import LocalServer
from tests.rawserver import OP_CLOSE, OP_PING, OP_TEXT, Peer, RawServer, frame, text
from tests.support import Events, Recorder, fast, sdk_threads
from tests.wsserver import wait_until

TOKEN = "test-token"
PAT = "test-pat"
BUY = {
    "buy": "1",
    "price": 100,
    "parameters": {
        "amount": 10,
        "basis": "stake",
        "contract_type": "CALL",
        "currency": "USD",
        "duration": 5,
        "duration_unit": "m",
        "symbol": "R_100",
    },
}


def contract_of(message: dict[str, Any]) -> Any:
    return (message.get("buy") or message.get("proposal_open_contract") or {}).get("contract_id")


# ------------------------------------------------------------------ creating streams


def test_a_streaming_buy_is_followed_not_bought_again_after_a_reconnect(
    deriv_server: LocalServer,
) -> None:
    # Regression: the restore re-sent every stream's request as it was: a second contract was
    # bought on every reconnect.
    conn = fast(deriv_server.url)
    events = Events(conn, ("open",))
    with conn:
        conn.authorize(TOKEN)
        balance = conn.request({"balance": 1})["balance"]["balance"]
        got = Recorder()
        sub = conn.subscribe(BUY, got)
        contract = contract_of(got.wait(1)[0])
        old_id = sub.id
        for round_ in (1, 2):
            seen = len(got.items)
            deriv_server.drop()
            events.wait("open", round_, reconnected=True)
            got.wait(seen + 1)  # the stream is back: an update of the same contract
        assert {contract_of(m) for m in got.items} == {contract}
        assert sub.active and sub.id != old_id
        assert sum(1 for r in deriv_server.requests if "buy" in r) == 1
        after = conn.request({"balance": 1})["balance"]["balance"]
        assert after == pytest.approx(balance - got.items[0]["buy"]["buy_price"])


def test_two_identical_streaming_buys_are_two_contracts(deriv_server: LocalServer) -> None:
    # Regression: the second subscribe() joined the first's stream: one contract, two handles.
    with fast(deriv_server.url) as conn:
        conn.authorize(TOKEN)
        first, second = Recorder(), Recorder()
        a = conn.subscribe(BUY, first)
        b = conn.subscribe(BUY, second)
        assert a.id != b.id
        assert contract_of(first.wait(1)[0]) != contract_of(second.wait(1)[0])
        assert sum(1 for r in deriv_server.requests if "buy" in r) == 2


# ------------------------------------------------------------------ back-pressure


@pytest.mark.deriv_server(tick_interval=0.005)
def test_the_keepalive_runs_again_after_a_back_pressure_pause(
    deriv_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: after one pause the keepalive restarted without its link: it never pinged
    # again, and a dead link was never noticed.
    caplog.set_level(logging.WARNING, logger="deriv_sdk.reader")
    conn = fast(deriv_server.url, max_queue=4, keepalive_interval=0.2, keepalive_timeout=0.4)
    events = Events(conn, ("close",))
    calls = Recorder()

    def slow(message: dict[str, Any]) -> None:
        calls(message)
        if len(calls.items) < 20:
            time.sleep(0.05)  # the queue fills: reading pauses

    with conn:
        conn.subscribe({"ticks": "R_100"}, slow)
        calls.wait(25)
        assert any("paus" in r.getMessage() for r in caplog.records)
        pings = sum(1 for r in deriv_server.requests if "ping" in r)
        assert wait_until(lambda: sum(1 for r in deriv_server.requests if "ping" in r) >= pings + 2)
        deriv_server.stall()
        events.wait("close", reason="keepalive timeout")
        deriv_server.resume()


@pytest.mark.deriv_server(tick_interval=0.005)
def test_a_listener_request_under_back_pressure_gets_its_answer(
    deriv_server: LocalServer,
) -> None:
    # Regression: the listener waited for an answer the paused reader would never read: a
    # RequestTimeoutError for a request the server had answered (for a buy: money moved).
    conn = fast(deriv_server.url, max_queue=4)
    results = Recorder()
    count = [0]

    def listener(message: dict[str, Any]) -> None:
        count[0] += 1
        if count[0] < 10:
            time.sleep(0.05)
        elif count[0] == 10:
            try:
                results(conn.request({"time": 1}, timeout=3)["msg_type"])
            except RequestTimeoutError as exc:
                results(exc)

    with conn:
        conn.subscribe({"ticks": "R_100"}, listener)
        assert results.wait(1, timeout=10) == ["time"]


# ------------------------------------------------------------------ req_ids


@pytest.mark.deriv_server(tick_interval=0.001)
def test_an_ended_streams_req_id_is_not_reused_on_its_link(deriv_server: LocalServer) -> None:
    # Regression: a request (or a new stream) taking a just-forgotten stream's req_id was
    # answered by one of its updates still in flight.
    conn = fast(deriv_server.url)
    events = Events(conn, ("open",))
    with conn:
        sub = conn.subscribe({"ticks": "R_10", "req_id": 7}, lambda m: None)
        sub.forget()
        with pytest.raises(ValueError, match="req_id 7 is in use"):
            conn.request({"time": 1, "req_id": 7})
        with pytest.raises(ValueError, match="req_id 7 is in use"):
            conn.subscribe({"ticks": "R_100", "req_id": 7}, lambda m: None)
        deriv_server.drop()  # nothing of the old link can arrive on the next one
        events.wait("open", reconnected=True)
        assert conn.request({"time": 1, "req_id": 7})["msg_type"] == "time"


# ------------------------------------------------------------------ tokens


def test_a_token_read_from_a_file_works_and_a_bad_one_never_shows(
    deriv_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: a PAT with its newline made http.client raise a ValueError holding the whole
    # Authorization header; it reached the exception, the error event and the logs.
    caplog.set_level(logging.DEBUG, logger="deriv_sdk")
    rest = RestClient("app", PAT + "\n", base_url=deriv_server.rest_url)
    account = rest.accounts()[0]["account_id"]
    bad = RestClient("app", "test pat\x00", base_url=deriv_server.rest_url)
    with pytest.raises(ValueError) as raised:
        bad.accounts()
    assert "test" not in str(raised.value)
    conn = Connection.options(account, rest=bad, request_timeout=2)
    errors = Events(conn, ("error",))
    with pytest.raises(ConnectError) as failed:
        conn.connect(timeout=2)
    conn.close()
    shown = [str(failed.value), *(e.message for e in errors.items), caplog.text]
    assert not any("test pat" in text for text in shown)


# ------------------------------------------------------------------ REST deadline and abort


class HttpServer(RawServer):
    """Answers each HTTP request with ``head``, then trickles ``b" "`` every ``every``
    seconds (forever: the call must end it). ``answered`` is set once a head is out."""

    def __init__(self, head: bytes, every: float = 0.3) -> None:
        self.answered = threading.Event()
        self.head, self.every = head, every
        super().__init__(self._answer)

    def _answer(self, peer: Peer) -> None:
        peer.read_head()
        peer.send(self.head)
        self.answered.set()
        while not self._closed:
            peer.send(b" ")
            time.sleep(self.every)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


TRICKLE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"


def test_a_trickling_rest_answer_cannot_stretch_the_calls_timeout() -> None:
    # Regression: http.client's timeout is per socket operation: otp_url(timeout=1) ran on.
    with HttpServer(TRICKLE + b"\r\n") as server:
        rest = RestClient("app", PAT, base_url=server.base_url, timeout=0.5)
        outcome = Recorder()
        worker = threading.Thread(target=lambda: _call(rest, outcome), daemon=True)
        worker.start()
        (error,) = outcome.wait(1, timeout=5)
        assert isinstance(error, ConnectError) and "timed out after 0.5s" in str(error)
        worker.join(5)
        assert not worker.is_alive()


def _call(rest: RestClient, outcome: Recorder) -> None:
    try:
        outcome(rest.otp_url("acc"))
    except Exception as exc:
        outcome(exc)


@pytest.mark.parametrize("keep", ["close", "keep-alive"])
def test_close_ends_the_one_time_url_call_whatever_the_answer_says(keep: str) -> None:
    # Regression: with "Connection: close" http.client let go of the socket once the head was
    # read: close() could not reach it and returned with the io thread still in the call.
    head = TRICKLE + f"Connection: {keep}\r\n\r\n".encode()
    with HttpServer(head) as server:
        rest = RestClient("app", PAT, base_url=server.base_url, timeout=30)
        conn = Connection.options("acc", rest=rest)
        events = Events(conn, ("close", "error"))
        conn.connect()
        assert server.answered.wait(5)
        conn.close()
        assert sdk_threads() == []
        assert conn.ready_state == Connection.CLOSED
        assert [e.type for e in events.items] == ["close"]  # no error for our own close()


@contextlib.contextmanager
def hanging_port() -> Iterator[int]:
    """A port whose TCP connects hang: a listener with a full backlog that never accepts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    probe = socket.create_connection  # does a connect hang here?
    try:
        probe(("127.0.0.1", port), timeout=0.3).close()
        hangs = False
    except OSError:
        hangs = True
    try:
        if not hangs:
            pytest.skip("this kernel completes connects to a full backlog")
        yield port
    finally:
        for sock in [*fillers, listener]:
            sock.close()


def test_close_ends_the_one_time_url_call_in_its_tcp_connect() -> None:
    # Regression: an abort found no socket during the connect; close() returned without the
    # io thread, and the connection's events came later.
    with hanging_port() as port:
        rest = RestClient("app", PAT, base_url=f"http://127.0.0.1:{port}", timeout=30)
        conn = Connection.options("acc", rest=rest)
        events = Events(conn, ("close", "error"))
        conn.connect()
        time.sleep(0.2)  # (into the connect: nothing to wait on from outside)
        conn.close()
        assert sdk_threads() == []
        assert [e.type for e in events.items] == ["close"]


# ------------------------------------------------------------------ proxy


class ConnectProxy(RawServer):
    """An HTTP CONNECT proxy to 127.0.0.1 (whatever host is asked for); ``trickle``: answer
    200, then headers without end, one byte every 0.3 s."""

    def __init__(self, trickle: bool = False) -> None:
        self.heads: list[bytes] = []
        self.trickle = trickle
        super().__init__(self._serve_one)

    def _serve_one(self, peer: Peer) -> None:
        head = peer.read_head()
        self.heads.append(head)
        if self.trickle:
            peer.send(b"HTTP/1.1 200 OK\r\n")
            while not self._closed:
                peer.send(b"X")
                time.sleep(0.3)
            return
        port = int(head.split(b"\r\n")[0].split(b" ")[1].rsplit(b":", 1)[1])
        upstream = socket.create_connection(("127.0.0.1", port))
        peer.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pump = threading.Thread(target=_pipe, args=(upstream, peer.sock), daemon=True)
        pump.start()
        _pipe(peer.sock, upstream)
        pump.join(5)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def test_a_connection_through_a_connect_proxy_with_credentials(
    deriv_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ConnectProxy() as proxy:
        monkeypatch.setenv("http_proxy", f"http://user:s3cret@127.0.0.1:{proxy.port}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        # (127.0.0.2: websocket-client never proxies 127.0.0.1; the proxy goes there anyway)
        url = deriv_server.url.replace("127.0.0.1", "127.0.0.2")
        with fast(url) as conn:
            assert conn.request({"ping": 1})["ping"] == "pong"
        (head,) = proxy.heads
        assert head.startswith(f"CONNECT 127.0.0.2:{deriv_server.port} HTTP/1.1".encode())
        assert b"Proxy-Authorization: Basic " + base64.b64encode(b"user:s3cret") in head


def test_a_trickling_proxy_cannot_stretch_a_connect_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Regression: websocket-client read the CONNECT answer a byte per recv(), each with the
    # whole timeout: an attempt with a 1 s deadline never ended.
    with ConnectProxy(trickle=True) as proxy:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        url = "ws://192.0.2.1:80/websockets/v3?app_id=1"
        conn = Connection(url=url, request_timeout=1.0, reconnect_delay=30)
        errors = Events(conn, ("error",))
        conn.connect()  # (no timeout: the attempt alone must end itself)
        (error,) = errors.wait("error", timeout=5)
        assert isinstance(error.error, ConnectError) and "timed out" in error.message
        conn.close()


# ------------------------------------------------------------------ the waiting requests


def test_a_request_that_expired_waiting_for_the_link_is_never_sent(
    deriv_server: LocalServer,
) -> None:
    # Regression: a send_request() whose timeout passed while the link was down was still
    # sent once it came back (its caller had been told it timed out).
    conn = fast(deriv_server.url, request_timeout=0.3)
    events = Events(conn, ("open", "close"))
    with conn:
        deriv_server.refuse(10**6)
        deriv_server.drop()
        events.wait("close")
        got = Recorder()
        conn.send_request({"time": 1, "passthrough": {"expired": 1}}, got)
        (result,) = got.wait(1)
        assert isinstance(result, RequestTimeoutError)
        deriv_server.refuse(0)
        events.wait("open", reconnected=True)
        conn.request({"ping": 1}, timeout=5)  # (what the new link sent is in before this)
        assert not [r for r in deriv_server.requests if r.get("passthrough") == {"expired": 1}]


# ------------------------------------------------------------------ close


def test_no_data_frame_follows_our_close_frame() -> None:
    # RFC 6455 5.5.1: after its Close frame an endpoint sends no more data frames, however
    # many threads are sending when close() is called.
    after_close: list[int] = []

    def script(peer: Peer) -> None:
        peer.accept()
        while (op := peer.read_frame()[0]) not in (-1, OP_CLOSE):
            pass
        if op == OP_CLOSE:
            peer.sock.settimeout(0.3)
            with contextlib.suppress(OSError):
                while (op := peer.read_frame()[0]) != -1:
                    after_close.append(op)
            peer.send(frame(OP_CLOSE, b"\x03\xe8"))

    with RawServer(script) as server:
        for _ in range(3):
            conn = fast(server.url, reconnect=False)
            conn.connect(timeout=5)
            stop = threading.Event()

            def spam(conn: Connection = conn, stop: threading.Event = stop) -> None:
                with contextlib.suppress(Exception):
                    while not stop.is_set():
                        conn.send({"ping": 1})

            senders = [threading.Thread(target=spam) for _ in range(4)]
            for sender in senders:
                sender.start()
            time.sleep(0.05)  # (the senders are sending)
            conn.close()
            stop.set()
            for sender in senders:
                sender.join(5)
    assert OP_TEXT not in after_close


def test_an_invalid_app_id_ends_the_link_with_a_close_frame() -> None:
    # Regression: the SDK dropped the TCP connection without a close frame.
    closing: list[tuple[int, bytes]] = []

    def script(peer: Peer) -> None:
        peer.accept()
        request = peer.read_json()
        error = {"code": "InvalidAppID", "message": "Your app_id is invalid."}
        peer.send(text({"error": error, "msg_type": "ping", "req_id": request["req_id"]}))
        closing.append(peer.read_frame())

    with RawServer(script) as server:
        conn = fast(server.url)
        conn.connect(timeout=5)
        with pytest.raises(APIError, match="InvalidAppID"):
            conn.request({"ping": 1})
        assert conn.wait(5)
        assert wait_until(lambda: closing)
    assert closing == [(OP_CLOSE, b"\x03\xe8InvalidAppID")]


def _sending_until_the_server_ends_it(
    script: Any, runs: int, received: list[list[tuple[int, bytes]]]
) -> list[list[tuple[int, bytes]]]:
    """``runs`` connections, each with 3 threads sending pings until the connection closes
    (``script`` ends it); returns what ``script`` put in ``received``, one list per run."""
    with RawServer(script) as server:
        for _ in range(runs):
            conn = fast(server.url, reconnect=False)
            events = Events(conn, ("close",))
            conn.connect(timeout=5)

            def spam(conn: Connection = conn) -> None:
                with contextlib.suppress(Exception):
                    while True:
                        conn.send({"ping": 1})

            senders = [threading.Thread(target=spam) for _ in range(3)]
            for sender in senders:
                sender.start()
            events.wait("close")
            for sender in senders:
                sender.join(5)
            conn.close()
        assert wait_until(lambda: len(received) == runs)
    return received


def _frames_until_eof(peer: Peer) -> list[tuple[int, bytes]]:
    frames: list[tuple[int, bytes]] = []
    while (got := peer.read_frame())[0] != -1:
        frames.append(got)
    return frames


def test_an_invalid_app_id_gets_its_close_frame_out_while_others_are_sending() -> None:
    # Regression (a loaded run): the refusal queued its close frame behind a sender that held
    # the send lock, then shut the socket down before that sender could flush it.
    ends: list[list[tuple[int, bytes]]] = []

    def script(peer: Peer) -> None:
        peer.accept()
        for _ in range(20):  # the senders are sending
            peer.read_frame()
        error = {"code": "InvalidAppID", "message": "Your app_id is invalid."}
        peer.send(text({"error": error, "msg_type": "ping"}))
        ends.append(_frames_until_eof(peer))

    for frames in _sending_until_the_server_ends_it(script, 5, ends):
        assert frames[-1] == (OP_CLOSE, b"\x03\xe8InvalidAppID"), frames[-3:]


def test_no_data_frame_follows_the_echo_of_a_servers_close_frame() -> None:
    # RFC 6455 5.5.1, when the server closes: our echo is queued by the reader while senders
    # may be sending queued pongs; a sender must never send its data frame after the echo.
    ends: list[list[tuple[int, bytes]]] = []

    def script(peer: Peer) -> None:
        peer.accept()
        for _ in range(20):  # the senders are sending
            peer.read_frame()
        for _ in range(20):  # pongs get queued behind the senders' frames
            peer.send(frame(OP_PING, b"x"))
        peer.send(frame(OP_CLOSE, b"\x03\xe8"))
        ends.append(_frames_until_eof(peer))

    for frames in _sending_until_the_server_ends_it(script, 5, ends):
        ops = [op for op, _ in frames]
        assert OP_CLOSE in ops and OP_TEXT not in ops[ops.index(OP_CLOSE) :], ops[-5:]
