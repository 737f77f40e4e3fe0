"""Dead-link detection, reconnect, re-authorize, re-subscribe, TLS and hygiene (LocalServer)."""

from __future__ import annotations

import itertools
import json
import os
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deriv_sdk import (
    APIError,
    ConnectError,
    Connection,
    ConnectionClosedError,
)
from deriv_sdk.testing import LocalServer
from tests.wsserver import ScriptServer, wait_until

TOKEN = "test-token"


class Watch:
    """Records a connection's events with the time they ran; waits with timeouts."""

    def __init__(self, conn: Connection) -> None:
        self.events: list[tuple[float, Any]] = []
        self.cond = threading.Condition()
        for kind in ("open", "close", "error"):
            conn.on(kind, self._record)

    def _record(self, event: Any) -> None:
        with self.cond:
            self.events.append((time.monotonic(), event))
            self.cond.notify_all()

    def of(self, kind: str, **fields: Any) -> list[Any]:
        with self.cond:
            return [
                e
                for _, e in self.events
                if e.type == kind and all(getattr(e, k) == v for k, v in fields.items())
            ]

    def times(self, kind: str) -> list[float]:
        with self.cond:
            return [t for t, e in self.events if e.type == kind]

    def wait(self, kind: str, count: int = 1, timeout: float = 5.0, **fields: Any) -> list[Any]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.of(kind, **fields)) >= count, timeout)
        assert ok, f"expected {count} {kind} {fields}, got {self.events}"
        return self.of(kind, **fields)


class Ticks:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, msg: dict[str, Any]) -> None:
        with self.cond:
            self.items.append(msg)
            self.cond.notify_all()

    def wait_more(self, than: int, timeout: float = 5.0) -> int:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.items) > than, timeout)
            assert ok, f"no tick after {than}"
            return len(self.items)


def client_threads() -> list[str]:
    return sorted(
        t.name
        for t in threading.enumerate()
        if t.name.startswith("deriv_sdk-") and not t.name.startswith("deriv_sdk-server")
    )


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(tokens=[TOKEN], tick_interval=0.02, seed=7) as srv:
        yield srv


def fast(url: str, **kwargs: Any) -> Connection:
    kwargs.setdefault("keepalive_interval", None)
    kwargs.setdefault("reconnect_delay", 0.05)
    kwargs.setdefault("reconnect_max_delay", 0.2)
    kwargs.setdefault("request_timeout", 5.0)
    return Connection(url=url, **kwargs)


# --------------------------------------------------------------------------- dead link


def test_a_stalled_server_is_declared_dead_and_the_stream_resumes(server: LocalServer) -> None:
    conn = fast(server.url, keepalive_interval=0.5, keepalive_timeout=0.5)
    watch = Watch(conn)
    ticks = Ticks()
    with conn:
        sub = conn.subscribe({"ticks": "R_100"}, ticks)
        first_id = sub.id
        ticks.wait_more(2)
        server.stall()
        stalled = time.monotonic()
        (closed,) = watch.wait("close", timeout=3)
        assert time.monotonic() - stalled <= 1.5
        assert closed.will_reconnect and closed.code == 1006 and not closed.was_clean
        server.resume()
        watch.wait("open", reconnected=True)
        seen = len(ticks.items)
        ticks.wait_more(seen)
        assert sub.active and sub.id != first_id and sub.id == ticks.items[-1]["subscription"]["id"]


def test_a_slow_listener_does_not_make_a_live_link_look_dead(server: LocalServer) -> None:
    conn = fast(server.url, keepalive_interval=0.5, keepalive_timeout=0.5)
    watch = Watch(conn)
    slept = threading.Event()

    def slow(msg: dict[str, Any]) -> None:
        if not slept.is_set():
            time.sleep(3.0)  # the slow listener under test
            slept.set()

    with conn:
        conn.subscribe({"ticks": "R_100"}, slow)
        assert slept.wait(6)
        assert conn.request({"ping": 1})["ping"] == "pong"
    assert watch.of("close") == [watch.of("close")[0]]  # only the final one
    assert watch.of("close", will_reconnect=True) == []
    assert len(watch.of("open")) == 1
    pings = [r for r in server.requests if "ping" in r]
    assert len(pings) >= 5  # keepalive kept pinging (and got answers) during the sleep


# --------------------------------------------------------------------------- reconnect


def test_twenty_drops_reconnect_reauthorize_and_resubscribe_in_order(
    server: LocalServer,
) -> None:
    conn = fast(server.url)
    watch = Watch(conn)
    ticks = Ticks()
    with conn:
        conn.authorize(TOKEN)
        sub = conn.subscribe({"ticks": "R_50"}, ticks)
        ticks.wait_more(0)
        baseline = client_threads()
        for n in range(1, 21):
            seen = len(ticks.items)
            server.drop()
            watch.wait("open", n, reconnected=True)
            ticks.wait_more(seen)
            assert sub.active
            time.sleep(max(0.0, 1.0 - 0.05))  # the issue's rhythm: drops 1 s apart
        assert wait_until(lambda: client_threads() == baseline), (client_threads(), baseline)
        assert len(watch.of("close", will_reconnect=True)) == 20
    calls = [next(iter(r)) for r in server.requests if "ping" not in r]
    # The first session, then per reconnect: authorize before the re-subscribe.
    assert calls[:2] == ["authorize", "ticks"]
    assert calls[2:] == ["authorize", "ticks"] * 20
    assert all(r.get("authorize") == TOKEN for r in server.requests if "authorize" in r)


def test_requests_pending_at_a_drop_fail_and_one_made_in_the_outage_waits(
    server: LocalServer,
) -> None:
    conn = fast(server.url, request_timeout=10)
    watch = Watch(conn)
    conn.connect(timeout=5)
    failures: list[tuple[float, BaseException]] = []

    def waiter() -> None:
        try:
            conn.request({"ping": 1})
        except BaseException as exc:
            failures.append((time.monotonic(), exc))

    server.stall()  # so that the requests stay pending
    threads = [threading.Thread(target=waiter) for _ in range(5)]
    for t in threads:
        t.start()
    assert wait_until(lambda: len(conn._outbound.pending) == 5)  # all five sent and waiting
    server.refuse(2, 503)  # keep the outage going for two attempts
    dropped = time.monotonic()
    server.drop()  # (drop discards the held pings; resume after, for the reconnect)
    server.resume()
    for t in threads:
        t.join(5)
    assert len(failures) == 5
    assert all(isinstance(e, ConnectionClosedError) for _, e in failures)
    assert all(t - dropped < 1.0 for t, _ in failures)
    watch.wait("close", will_reconnect=True)
    answer = conn.request({"time": 1})  # made during the outage
    assert answer["msg_type"] == "time"
    # (open runs on the dispatch thread: it may come a moment after the answer is back)
    watch.wait("open", reconnected=True)
    conn.close()


def test_refused_handshakes_are_retried_with_growing_delays(server: LocalServer) -> None:
    conn = fast(server.url, reconnect_delay=0.1, reconnect_max_delay=5)
    conn._policy.backoff._rand = lambda: 1.0  # no jitter: the caps themselves
    watch = Watch(conn)
    with conn:
        server.refuse(3, 503)
        server.drop()
        watch.wait("open", reconnected=True)
        errors = watch.of("error")
        assert len(errors) == 3
        assert all(isinstance(e.error, ConnectError) and e.error.status == 503 for e in errors)
        stamps = [watch.times("close")[0], *watch.times("error")]
        gaps = [b - a for a, b in itertools.pairwise(stamps[1:])]
        assert gaps[0] < gaps[1], stamps  # 0.2 s then 0.4 s


def test_a_4xx_handshake_of_a_connection_that_was_open_is_retried(server: LocalServer) -> None:
    # Regression: one 403 during a reconnect (a proxy or CDN incident) ended an unattended
    # bot for good. A connection that has been OPEN retries 4xx with backoff.
    conn = fast(server.url)
    watch = Watch(conn)
    conn.connect(timeout=5)
    server.refuse(2, 403)
    server.drop()
    watch.wait("open", reconnected=True)
    errors = watch.of("error")
    assert [e.error.status for e in errors] == [403, 403]
    assert watch.of("close", will_reconnect=False) == []
    conn.close()


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_4xx_handshake_of_a_connection_never_open_is_final(
    server: LocalServer, status: int
) -> None:
    server.refuse(1, status)
    conn = fast(server.url)
    watch = Watch(conn)
    with pytest.raises(ConnectError) as info:
        conn.connect(timeout=5, retry=True)  # even with retry=True: retrying cannot help
    assert info.value.status == status
    assert [e.error.status for e in watch.of("error")] == [status]
    assert watch.of("close", will_reconnect=False)
    assert conn.ready_state == Connection.CLOSED


def test_invalid_app_id_is_not_retried(server: LocalServer) -> None:
    url = server.url.replace("app_id=1089", "app_id=abc")
    conn = fast(url)
    watch = Watch(conn)
    conn.connect(timeout=5)
    with pytest.raises((APIError, ConnectionClosedError)):
        conn.request({"ping": 1})
    assert conn.wait(5)
    assert watch.of("close", will_reconnect=True) == []
    conn.close()


def test_close_during_a_long_backoff_returns_at_once(server: LocalServer) -> None:
    conn = fast(server.url, reconnect_delay=30, reconnect_max_delay=30)
    conn._policy.backoff._rand = lambda: 1.0
    watch = Watch(conn)
    conn.connect(timeout=5)
    server.drop()
    watch.wait("close", will_reconnect=True)
    started = time.monotonic()
    conn.close()
    assert time.monotonic() - started < 1.0
    assert client_threads() == []
    watch.wait("close", will_reconnect=False)


def test_max_reconnect_attempts_gives_up_with_a_final_close(server: LocalServer) -> None:
    conn = fast(server.url, max_reconnect_attempts=2)
    watch = Watch(conn)
    conn.connect(timeout=5)
    server.refuse(5, 503)
    server.drop()
    assert conn.wait(5)
    assert len(watch.of("error")) == 2
    assert [e.will_reconnect for e in watch.of("close")] == [True, False]
    conn.close()


def test_a_failed_resubscribe_ends_that_subscription_with_an_error(
    script_server: ScriptServer,
) -> None:
    connections: list[Any] = []

    def script(ws: Any, data: Any) -> None:
        if ws not in connections:
            connections.append(ws)
        base = {"echo_req": data, "msg_type": "tick", "req_id": data["req_id"]}
        if len(connections) == 1:
            ws.send(json.dumps({**base, "tick": {"quote": 1}, "subscription": {"id": "b" * 32}}))
            ws.socket.shutdown(2)  # drop after the first reply
        else:
            ws.send(json.dumps({**base, "error": {"code": "InvalidSymbol", "message": "gone"}}))

    script_server.handler = script
    conn = fast(script_server.url)
    watch = Watch(conn)
    with conn:
        sub = conn.subscribe({"ticks": "R_10"}, lambda m: None)
        watch.wait("open", reconnected=True)
        (error,) = watch.of("error")
        assert isinstance(error.error, APIError) and error.error.code == "InvalidSymbol"
        assert "tick" in str(error.error)
        assert not sub.active


# --------------------------------------------------------------------------- TLS


def test_wss_verifies_certificates_and_accepts_a_private_ca() -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    with LocalServer(tokens=[TOKEN], ssl_context=server_ctx) as srv:
        assert srv.url.startswith("wss://")
        with pytest.raises(ConnectError, match="certificate"):
            Connection(url=srv.url, keepalive_interval=None).connect(timeout=5)
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        with Connection(url=srv.url, keepalive_interval=None, ssl_context=client_ctx) as conn:
            assert conn.request({"ping": 1})["ping"] == "pong"


# --------------------------------------------------------------------------- hygiene


def test_two_hundred_cycles_leave_no_thread_fd_or_timer(server: LocalServer) -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    with Connection(url=server.url, keepalive_interval=0.05) as warm:
        warm.request({"ping": 1})
    before = fds()
    for _ in range(200):
        conn = Connection(url=server.url, keepalive_interval=0.05)
        conn.connect(timeout=5)
        conn.close()
        assert conn.ready_state == Connection.CLOSED
    assert client_threads() == []
    assert wait_until(lambda: fds() <= before), (fds(), before)
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]


def test_a_failed_reauthorize_fires_error_and_the_resubscribes_still_run(
    server: LocalServer,
) -> None:
    conn = fast(server.url)
    watch = Watch(conn)
    ticks = Ticks()
    with conn:
        conn.authorize(TOKEN)
        tick_sub = conn.subscribe({"ticks": "R_25"}, ticks)
        balance_sub = conn.subscribe({"balance": 1}, lambda m: None)
        with server.lock:  # the token is revoked while the link is down
            del server.accounts[TOKEN]
        server.drop()
        watch.wait("open", reconnected=True)
        errors = [e.error for e in watch.of("error")]
        assert [type(e) for e in errors] == [APIError, APIError]
        assert errors[0].code == "InvalidToken" and TOKEN not in str(errors[0])
        assert errors[1].code == "AuthorizationRequired"  # the balance stream needs the login
        seen = len(ticks.items)
        ticks.wait_more(seen)  # the ticks stream came back
        assert tick_sub.active and not balance_sub.active
