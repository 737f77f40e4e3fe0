"""Connection: the browser-shaped client, against LocalServer (and, for what a faithful
server never does, a scripted one)."""

from __future__ import annotations

import itertools
import json
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from deriv_sdk import (
    CloseEvent,
    ConnectError,
    Connection,
    ErrorEvent,
    InvalidStateError,
    MessageEvent,
    OpenEvent,
    ProtocolError,
)
from deriv_sdk.testing import LocalServer
from tests.wsserver import ScriptServer, pong, wait_until


class Recorder:
    """Collects the events of a connection; ``wait_for`` blocks until a condition holds."""

    def __init__(self, conn: Connection) -> None:
        self.events: list[Any] = []
        self.threads: list[str] = []
        self.cond = threading.Condition()
        for kind in ("open", "message", "close", "error"):
            conn.on(kind, self._record)

    def _record(self, event: Any) -> None:
        with self.cond:
            self.events.append(event)
            self.threads.append(threading.current_thread().name)
            self.cond.notify_all()

    def of(self, kind: str) -> list[Any]:
        with self.cond:
            return [e for e in self.events if e.type == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 5.0) -> list[Any]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.of(kind)) >= count, timeout)
        assert ok, f"expected {count} {kind!r} events, got {self.of(kind)}"
        return self.of(kind)


def make(server: ScriptServer | LocalServer, **kwargs: Any) -> Connection:
    kwargs.setdefault("keepalive_interval", None)
    kwargs.setdefault("reconnect", False)
    return Connection(url=server.url, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- construction


def test_url_is_built_like_derivs_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DERIV_APP_ID", raising=False)
    conn = Connection()
    assert conn.url == "wss://ws.derivws.com/websockets/v3?app_id=1089&l=EN&brand=deriv"
    assert conn.ready_state == Connection.CLOSED == 3
    conn = Connection(1234, endpoint="green.derivws.com", language="ru", brand="Deriv")
    assert conn.url == "wss://green.derivws.com/websockets/v3?app_id=1234&l=RU&brand=deriv"
    monkeypatch.setenv("DERIV_APP_ID", "5678")
    assert "app_id=5678" in Connection().url
    assert (Connection.CONNECTING, Connection.OPEN, Connection.CLOSING) == (0, 1, 2)


def test_bad_constructor_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="ws://"):
        Connection(url="http://example.com/")
    for extra in ({"app_id": 1089}, {"endpoint": "x"}, {"language": "EN"}, {"brand": "deriv"}):
        with pytest.raises(ValueError, match="url= replaces the whole URL"):
            Connection(url="ws://example.com/", **extra)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Connection(request_timeout=0)
    with pytest.raises(ValueError):
        Connection(keepalive_interval=0)


def test_nothing_touches_the_network_before_connect(script_server: ScriptServer) -> None:
    conn = make(script_server)
    time.sleep(0.1)  # only to show that nothing happens
    assert script_server.connections == []
    assert conn.wait(0) is True  # CLOSED already
    with pytest.raises(InvalidStateError):
        conn.send({"ping": 1})


# --------------------------------------------------------------------------- the guide's program


def test_the_guides_program_ported(script_server: ScriptServer) -> None:
    conn = make(script_server)
    rec = Recorder(conn)
    conn.on("open", lambda event: conn.send({"ping": 1}))
    conn.connect()
    assert conn.ready_state in (Connection.CONNECTING, Connection.OPEN)
    (message,) = rec.wait_for("message")
    assert isinstance(message, MessageEvent)
    assert message.data == {"echo_req": {"ping": 1}, "msg_type": "ping", "ping": "pong"}
    assert json.loads(message.raw) == message.data and isinstance(message.raw, str)
    assert message.msg_type == "ping" and message.target is conn
    assert script_server.wait_frames(1) == ['{"ping":1}']  # one JSON text frame, as given
    conn.close(1000, "bye")
    (closed,) = rec.wait_for("close")
    assert isinstance(closed, CloseEvent)
    assert (closed.code, closed.reason, closed.was_clean, closed.will_reconnect) == (
        1000,
        "bye",
        True,
        False,
    )
    opens = rec.of("open")
    assert len(opens) == 1 and isinstance(opens[0], OpenEvent) and not opens[0].reconnected
    assert conn.ready_state == Connection.CLOSED
    assert all(name.startswith("deriv_sdk-dispatch") for name in rec.threads)


def test_context_manager_connects_and_closes(deriv_server: LocalServer) -> None:
    with make(deriv_server) as conn:
        assert conn.ready_state == Connection.OPEN
        assert conn.request({"ping": 1})["ping"] == "pong"
    assert conn.ready_state == Connection.CLOSED
    assert "OPEN" not in repr(conn) and deriv_server.url in repr(conn)


def test_connect_twice_is_an_invalid_state(deriv_server: LocalServer) -> None:
    with make(deriv_server) as conn, pytest.raises(InvalidStateError):
        conn.connect()


# --------------------------------------------------------------------------- send()


def test_send_frames_each_type_as_the_browser_does(script_server: ScriptServer) -> None:
    with make(script_server) as conn:
        conn.send({"ping": 1, "text": "héllo"})
        conn.send([1, 2])
        conn.send("plain text")
        conn.send(b"\x00\x01binary")
        frames = script_server.wait_frames(4)
    assert frames == ['{"ping":1,"text":"héllo"}', "[1,2]", "plain text", b"\x00\x01binary"]


def test_send_rejects_what_json_cannot_encode(script_server: ScriptServer) -> None:
    with make(script_server) as conn:
        for bad in ({1, 2}, object(), {"a": object()}, 3.5, None):
            with pytest.raises(TypeError):
                conn.send(bad)
        conn.send("marker")
        assert script_server.wait_frames(1) == ["marker"]  # nothing before the marker


def test_send_before_open_and_after_close_is_an_invalid_state(
    deriv_server: LocalServer,
) -> None:
    conn = make(deriv_server)
    with pytest.raises(InvalidStateError):
        conn.send({"ping": 1})
    conn.connect(timeout=5)
    conn.close()
    with pytest.raises(InvalidStateError):
        conn.send({"ping": 1})


def test_eight_threads_sending_at_once_lose_nothing(script_server: ScriptServer) -> None:
    script_server.handler = lambda ws, data: None
    with make(script_server) as conn:
        start = threading.Barrier(8)

        def worker(n: int) -> None:
            start.wait(5)
            for i in range(1000):
                conn.send({"ping": 1, "passthrough": {"t": n, "i": i, "pad": "x" * (i % 300)}})

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        script_server.wait_frames(8000, timeout=30)
    seen = {(m["passthrough"]["t"], m["passthrough"]["i"]) for m in script_server.json_frames()}
    assert len(seen) == 8000
    for m in script_server.json_frames():
        assert m["passthrough"]["pad"] == "x" * (m["passthrough"]["i"] % 300)


# --------------------------------------------------------------------------- listeners


def test_listeners_order_once_off_decorator(deriv_server: LocalServer) -> None:
    conn = make(deriv_server)
    calls: list[str] = []
    done = threading.Event()

    def first(event: MessageEvent) -> None:
        calls.append("first")

    @conn.on("message")
    def second(event: MessageEvent) -> None:
        calls.append("second")

    conn.on("message", first)  # added after second: called after it
    assert conn.once("message", lambda e: calls.append("once")) is not None

    @conn.once("open")
    def opened(event: OpenEvent) -> None:
        calls.append("open")

    def removed(event: Any) -> None:
        calls.append("removed")

    assert conn.on("message", removed) is removed
    conn.off("message", removed)
    conn.off("message", removed)  # removing something not there is not an error

    def gone(event: Any) -> None:
        calls.append("gone")

    conn.add_event_listener("message", gone)
    conn.remove_event_listener("message", gone)
    conn.on("message", lambda e: done.set() if len(calls) >= 6 else None)
    with pytest.raises(ValueError):
        conn.on("pong", first)
    with pytest.raises(ValueError):
        conn.once("tick")
    with conn:
        conn.request({"ping": 1})
        conn.request({"ping": 1})
        assert done.wait(5)
    assert calls == ["open", "second", "first", "once", "second", "first"]
    assert second.__name__ == "second"  # the decorator returns the function


def test_listeners_never_run_on_the_reader_and_a_slow_one_does_not_stop_reading(
    deriv_server: LocalServer,
) -> None:
    conn = make(deriv_server)
    names: list[str] = []
    sleeping = threading.Event()
    answered_while_sleeping = threading.Event()

    def slow(event: MessageEvent) -> None:
        names.append(threading.current_thread().name)
        if not sleeping.is_set():
            sleeping.set()
            time.sleep(2.0)  # the slow listener under test
            names.append("woke")

    conn.on("message", slow)
    with conn:
        conn.send({"ping": 1})
        assert sleeping.wait(5)
        # While the listener sleeps, the reader still reads: a request completes.
        assert conn.request({"ping": 1}, timeout=1.5)["ping"] == "pong"
        if "woke" not in names:
            answered_while_sleeping.set()
    assert answered_while_sleeping.is_set()
    assert names[0].startswith("deriv_sdk-dispatch")


def test_a_raising_listener_fires_error_and_the_stream_goes_on(
    deriv_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    conn = make(deriv_server)
    rec = Recorder(conn)
    boom = RuntimeError("listener bug")
    seen: list[int] = []

    def bad(event: MessageEvent) -> None:
        seen.append(event.data["req_id"])
        raise boom

    def bad_error_listener(event: ErrorEvent) -> None:
        raise KeyError("error listener bug")

    conn.on("message", bad)
    conn.on("error", bad_error_listener)
    with caplog.at_level(logging.ERROR, logger="deriv_sdk"), conn:
        conn.request({"ping": 1})
        conn.request({"ping": 1})
        errors = rec.wait_for("error", 2)
        rec.wait_for("message", 2)
    assert [e.error for e in errors] == [boom, boom]
    assert errors[0].message == "listener bug"
    assert seen == [1, 2]
    assert "error listener" in caplog.text and "KeyError" in caplog.text


# --------------------------------------------------------------------------- bad frames


def test_non_json_and_binary_frames_fire_protocol_errors(script_server: ScriptServer) -> None:
    def script(ws: Any, data: Any) -> None:
        if data == {"ping": 1, "req_id": 1}:
            ws.send("this is not json")
            ws.send(b"\x89binary")
        pong(ws, data)

    script_server.handler = script
    conn = make(script_server)
    rec = Recorder(conn)
    with conn:
        conn.request({"ping": 1})
        errors = rec.wait_for("error", 2)
        assert conn.request({"ping": 1})["req_id"] == 2  # still open, next message arrives
    assert all(isinstance(e.error, ProtocolError) for e in errors)
    assert [e.error.payload for e in errors] == ["this is not json", b"\x89binary"]
    assert [m.data["req_id"] for m in rec.of("message")] == [1, 2]


# --------------------------------------------------------------------------- close()


@pytest.mark.parametrize(("code", "reason"), [(1005, ""), (2000, ""), (999, ""), (1000, "x" * 124)])
def test_close_rejects_what_the_browser_rejects(
    deriv_server: LocalServer, code: int, reason: str
) -> None:
    with make(deriv_server) as conn:
        with pytest.raises(ValueError):
            conn.close(code, reason)
        assert conn.ready_state == Connection.OPEN
    conn.close(4000, "é" * 61)  # 122 bytes: fine, and idempotent after the with-block


def test_close_twice_and_from_a_listener_without_deadlock(deriv_server: LocalServer) -> None:
    conn = make(deriv_server)
    rec = Recorder(conn)
    conn.on("message", lambda event: conn.close(3001, "from listener"))
    conn.connect(timeout=5)
    conn.send({"ping": 1})
    (closed,) = rec.wait_for("close")
    assert (closed.code, closed.reason) == (3001, "from listener")
    assert conn.wait(5)
    conn.close()
    conn.close()
    assert len(rec.of("close")) == 1


def test_close_stops_keepalive_and_leaves_no_thread(deriv_server: LocalServer) -> None:
    conn = make(deriv_server, keepalive_interval=0.1)
    conn.connect(timeout=5)
    assert wait_until(lambda: len(deriv_server.requests) >= 2)
    conn.close()
    alive = [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("deriv_sdk-") and not t.name.startswith("deriv_sdk-server")
    ]
    assert alive == []
    count = len(deriv_server.requests)
    time.sleep(0.5)  # only to show that no ping follows
    assert len(deriv_server.requests) == count


def test_wait_returns_false_on_timeout_and_true_once_closed(deriv_server: LocalServer) -> None:
    conn = make(deriv_server)
    conn.connect(timeout=5)
    assert conn.wait(0.05) is False
    threading.Timer(0.05, conn.close).start()
    assert conn.wait(5) is True


def test_server_close_frame_gives_clean_close_event(deriv_server: LocalServer) -> None:
    conn = make(deriv_server)
    rec = Recorder(conn)
    conn.connect(timeout=5)
    deriv_server.close_all(4001, "server says bye")
    (closed,) = rec.wait_for("close")
    assert (closed.code, closed.reason, closed.was_clean) == (4001, "server says bye", True)
    assert conn.wait(5)


def test_abrupt_drop_gives_1006_not_clean(deriv_server: LocalServer) -> None:
    conn = make(deriv_server)
    rec = Recorder(conn)
    conn.connect(timeout=5)
    deriv_server.drop()
    (closed,) = rec.wait_for("close")
    assert (closed.code, closed.was_clean, closed.will_reconnect) == (1006, False, False)
    conn.close()


# --------------------------------------------------------------------------- keepalive


def test_keepalive_pings_on_the_interval(script_server: ScriptServer) -> None:
    stamps: list[float] = []

    def script(ws: Any, data: Any) -> None:
        stamps.append(time.monotonic())
        pong(ws, data)

    script_server.handler = script
    conn = make(script_server, keepalive_interval=0.2)
    conn.connect(timeout=5)
    frames = script_server.wait_frames(5, timeout=5)
    conn.close()
    assert all(json.loads(f)["ping"] == 1 for f in frames)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    gaps.sort()
    assert 0.15 <= gaps[len(gaps) // 2] <= 0.4, gaps


def test_keepalive_none_sends_nothing(deriv_server: LocalServer) -> None:
    with make(deriv_server, keepalive_interval=None):
        time.sleep(1.0)  # only to show that no ping is sent
    assert deriv_server.requests == []


# --------------------------------------------------------------------------- connect failures


def test_connect_to_nothing_raises_connect_error_within_timeout() -> None:
    conn = Connection(url=f"ws://127.0.0.1:{free_port()}/", keepalive_interval=None)
    rec = Recorder(conn)
    started = time.monotonic()
    with pytest.raises(ConnectError) as info:
        conn.connect(timeout=2)
    assert time.monotonic() - started < 2.5
    assert isinstance(info.value, ConnectionError)
    assert len(rec.of("error")) == 1 and len(rec.of("close")) == 1
    assert rec.of("close")[0].will_reconnect is False
    assert conn.ready_state == Connection.CLOSED


def test_connect_without_timeout_reports_failure_by_events() -> None:
    conn = Connection(url=f"ws://127.0.0.1:{free_port()}/", keepalive_interval=None)
    rec = Recorder(conn)
    conn.connect()
    assert conn.wait(5)
    assert isinstance(rec.wait_for("error")[0].error, ConnectError)
    assert rec.wait_for("close")[0].code == 1006
    conn.close()


def test_http_403_handshake_gives_connect_error_with_status(deriv_server: LocalServer) -> None:
    deriv_server.refuse(1, 403)
    conn = make(deriv_server)
    with pytest.raises(ConnectError, match="403") as info:
        conn.connect(timeout=5)
    assert info.value.status == 403


def test_ctrl_c_in_wait_closes_and_reraises(deriv_server: LocalServer) -> None:
    script = (
        "import sys\n"
        "from deriv_sdk import Connection\n"
        f"conn = Connection(url={deriv_server.url!r}, keepalive_interval=None)\n"
        "conn.on('close', lambda e: print('closed', e.code, e.will_reconnect, flush=True))\n"
        "conn.connect(timeout=5)\n"
        # "ready" only once the main thread is inside wait(): a SIGINT before that would
        # land outside the code under test (the cause of this test's old flakiness).
        "import threading, time\n"
        "def inside_wait():\n"
        "    frame = sys._current_frames().get(threading.main_thread().ident)\n"
        "    while frame is not None:\n"
        "        if frame.f_code.co_name == 'wait' and 'connection' in frame.f_code.co_filename:\n"
        "            return True\n"
        "        frame = frame.f_back\n"
        "    return False\n"
        "def announce():\n"
        "    deadline = time.monotonic() + 5\n"
        "    while not inside_wait() and time.monotonic() < deadline:\n"
        "        time.sleep(0.001)\n"
        "    print('ready', flush=True)\n"
        "threading.Thread(target=announce, daemon=True).start()\n"
        "try:\n"
        "    conn.wait()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', conn.ready_state, flush=True)\n"
        "    sys.exit(7)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 7
    assert out.splitlines() == ["closed 1000 False", "interrupted 3"]
