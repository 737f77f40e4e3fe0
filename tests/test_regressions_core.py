"""Regressions of the core issue: requests, streams, reconnects, the dispatch thread.

Each test names the defect it shows fixed; each failed on the release before the fix.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from typing import Any

import pytest
from websockets.sync.server import ServerConnection

from deriv_sdk import (
    APIError,
    Connection,
    ConnectionClosedError,
    InvalidStateError,
    RequestTimeoutError,
)
from deriv_sdk.testing import LocalServer
from tests.rawserver import SlowProxy
from tests.support import Recorder, fast, sdk_threads
from tests.test_backpressure import Flood
from tests.wsserver import ScriptServer, wait_until

TOKEN = "test-token"


# ----------------------------------------------------------------- requests


def test_a_late_answer_never_reaches_another_caller(script_server: ScriptServer) -> None:
    # Regression: a request with its own req_id 3 timed out; the counter later handed 3 to
    # another request, and the late answer to the first resolved the second (a ping answer
    # returned to a time caller).
    late: list[tuple[ServerConnection, dict[str, Any]]] = []

    def handler(ws: ServerConnection, data: Any) -> None:
        if "ping" in data:
            late.append((ws, data))  # answered only later
            return
        if data.get("req_id") == 3 and late:
            ws0, ping = late.pop()
            ws0.send(json.dumps({"msg_type": "ping", "ping": "pong", "req_id": ping["req_id"]}))
        ws.send(json.dumps({"msg_type": "time", "time": 1, "req_id": data["req_id"]}))

    script_server.handler = handler
    conn = fast(script_server.url)
    conn.connect(timeout=5)
    with pytest.raises(RequestTimeoutError):
        conn.request({"ping": 1, "req_id": 3}, timeout=0.2)
    answers = [conn.request({"time": 1}, timeout=2)["msg_type"] for _ in range(5)]
    assert answers == ["time"] * 5
    conn.close()


def test_send_request_never_both_raises_and_calls_back(deriv_server: LocalServer) -> None:
    # Regression: send_request() racing a drop raised ConnectionClosedError and also ran its
    # callback with it (340 of 3,708 calls): a caller that retries on the exception acts
    # twice. Now every call either raises at once (and is never called back) or is called
    # back exactly once.
    conn = fast(deriv_server.url, reconnect_delay=0.001, reconnect_max_delay=0.005)
    conn.connect(timeout=5)
    calls: dict[int, int] = {}
    raised: set[int] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def dropper() -> None:
        while not stop.is_set():
            deriv_server.drop()
            time.sleep(0.003)

    def sender(worker: int) -> None:
        for i in range(600):
            key = worker * 10_000 + i

            def callback(result: Any, key: int = key) -> None:
                with lock:
                    calls[key] = calls.get(key, 0) + 1

            try:
                conn.send_request({"ping": 1}, callback)
            except (ConnectionClosedError, InvalidStateError):
                with lock:
                    raised.add(key)

    threads = [threading.Thread(target=dropper)]
    threads += [threading.Thread(target=sender, args=(w,)) for w in range(8)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # thread switches everywhere: races surface in a few runs
    try:
        for thread in threads:
            thread.start()
        for thread in threads[1:]:
            thread.join(60)
    finally:
        sys.setswitchinterval(switch)
        stop.set()
        threads[0].join(5)
    conn.close()
    assert conn.wait(5)
    keys = {w * 10_000 + i for w in range(8) for i in range(600)}
    with lock:
        assert sorted(raised & set(calls)) == []  # both raised and called back
        assert sorted(k for k, v in calls.items() if v != 1) == []  # called back twice
        assert sorted(keys - raised - set(calls)) == []  # neither: lost


def test_send_request_while_reconnecting_waits_for_open(deriv_server: LocalServer) -> None:
    # Regression: send_request() raised while reconnecting, where request() waits.
    conn = fast(deriv_server.url, reconnect_delay=0.3, reconnect_max_delay=0.3)
    conn._policy.backoff._rand = lambda: 1.0
    closed = threading.Event()
    conn.on("close", lambda e: closed.set())
    conn.connect(timeout=5)
    deriv_server.drop()
    assert closed.wait(5)
    assert conn.ready_state == Connection.CONNECTING
    got = Recorder()
    conn.send_request({"time": 1}, got)
    (result,) = got.wait(1)
    assert result["msg_type"] == "time"
    conn.close()


def test_request_timeout_infinity_keeps_the_dispatch_thread_alive(
    deriv_server: LocalServer,
) -> None:
    # Regression: request_timeout=float("inf") with send_request killed the dispatch thread
    # (OverflowError in queue.get); after that wait() hung forever.
    conn = Connection(url=deriv_server.url, request_timeout=math.inf, keepalive_interval=None)
    conn.connect(timeout=5)
    got = Recorder()
    conn.send_request({"ping": 1}, got)
    assert got.wait(1)[0]["ping"] == "pong"
    conn.send_request({"ping": 1}, got)
    assert len(got.wait(2)) == 2
    conn.close()
    assert conn.wait(2)


@pytest.mark.parametrize("bad", [math.nan, 0, -1, "5"])
def test_a_bad_request_timeout_is_a_clear_error_and_leaves_nothing(
    deriv_server: LocalServer, bad: Any
) -> None:
    # Regression: request(timeout=nan) raised a raw ValueError and left its entry behind.
    with fast(deriv_server.url) as conn:
        with pytest.raises((ValueError, TypeError), match="timeout"):
            conn.request({"ping": 1}, timeout=bad)
        assert len(conn._outbound.pending) == 0
        assert conn.request({"ping": 1})["ping"] == "pong"


# ----------------------------------------------------------------- the dispatch thread


def test_a_listener_calling_sys_exit_does_not_end_the_dispatch_thread(
    deriv_server: LocalServer,
) -> None:
    # Regression: a listener calling sys.exit() ended the dispatch thread for good.
    conn = fast(deriv_server.url)
    errors = Recorder()
    conn.on("error", lambda e: errors(e.error))
    conn.once("message", lambda e: sys.exit(3))
    got = Recorder()
    conn.on("message", got)
    conn.connect(timeout=5)
    conn.request({"ping": 1})
    conn.request({"ping": 1})
    assert len(got.wait(2)) == 2
    assert isinstance(errors.wait(1)[0], SystemExit)
    conn.close()
    assert conn.wait(2)


def test_close_waits_at_most_a_second_for_a_stuck_listener(
    deriv_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: close() behind a listener that blocks took 5 s and left the dispatch
    # thread alive without a word. Now: at most ~1 s, a warning, and the thread ends
    # when the listener returns.
    release = threading.Event()
    entered = threading.Event()

    def stuck(event: Any) -> None:
        entered.set()
        release.wait(10)

    conn = fast(deriv_server.url)
    conn.once("message", stuck)
    conn.connect(timeout=5)
    conn.send({"ping": 1})
    assert entered.wait(5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="deriv_sdk"):
        conn.close()
    assert time.monotonic() - started < 1.5
    assert conn.ready_state == Connection.CLOSED
    assert "a listener is still running" in caplog.text
    assert [t for t in sdk_threads() if "dispatch" not in t] == []
    release.set()
    assert wait_until(lambda: sdk_threads() == [])


# ----------------------------------------------------------------- streams and reconnects


class Ticks(Recorder):
    def ids(self) -> list[str]:
        with self.cond:
            return [m["subscription"]["id"] for m in self.items]


def test_a_resubscribe_without_answer_is_retried_and_open_waits_for_it(
    deriv_server: LocalServer,
) -> None:
    # Regression: a re-subscribe that got no answer within request_timeout ended the
    # Subscription for good, while open still fired (reconnected=True), ready_state was
    # OPEN and the listener was never called again.
    conn = fast(deriv_server.url, request_timeout=0.5)
    opens = Recorder()
    errors = Recorder()
    conn.on("open", opens)
    conn.on("error", lambda e: errors(e.error))
    conn.connect(timeout=5)
    ticks = Ticks()
    sub = conn.subscribe({"ticks": "R_100"}, ticks)
    ticks.wait(2)
    deriv_server.stall()  # handshakes still succeed; nothing is answered
    deriv_server.drop()
    errors.wait(1, timeout=5)  # the re-subscribe timed out: loud
    assert sub.active
    assert len(opens.items) == 1  # no "open" while the stream is not back
    deriv_server.resume()
    assert len(opens.wait(2, timeout=5)) == 2 and opens.items[1].reconnected
    before = len(ticks.items)
    ticks.wait(before + 2, timeout=5)
    assert sub.active and conn.ready_state == Connection.OPEN
    conn.close()


def test_the_first_message_after_a_resubscribe_carries_a_new_subscription_id(
    deriv_server: LocalServer,
) -> None:
    # How a listener tells the replayed tick after a reconnect (Deriv sends the current
    # tick again): the stream's subscription id changes with the re-subscribe.
    conn = fast(deriv_server.url)
    opens = Recorder()
    conn.on("open", opens)
    conn.connect(timeout=5)
    ticks = Ticks()
    sub = conn.subscribe({"ticks": "R_100"}, ticks)
    ticks.wait(2)
    old_id = sub.id
    deriv_server.drop()
    opens.wait(2)
    n = len(ticks.items)
    ticks.wait(n + 2)
    ids = ticks.ids()
    changes = [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]]
    assert len(changes) == 1  # one change: at the first message after the re-subscribe
    assert ids[0] == old_id and ids[changes[0]] == sub.id != old_id
    conn.close()


def test_logout_forgets_the_token(deriv_server: LocalServer) -> None:
    # Regression: after authorize(), a logout and a drop, the reconnect logged the session
    # back in with the remembered token.
    conn = fast(deriv_server.url)
    opens = Recorder()
    conn.on("open", opens)
    conn.connect(timeout=5)
    conn.authorize(TOKEN)
    conn.request({"logout": 1})
    deriv_server.drop()
    opens.wait(2)
    conn.request({"ping": 1})
    calls = [next(iter(r)) for r in deriv_server.requests]
    assert calls == ["authorize", "logout", "ping"]
    conn.close()


def test_a_shared_stream_never_replays_an_old_message_after_a_newer_one(
    script_server: ScriptServer,
) -> None:
    # Regression (stale quotes): a second Subscription joining a shared stream could get the
    # replayed last message after newer ones (its replay was queued after the io thread's
    # newer messages). The server streams numbered ticks as fast as it can.
    flood = Flood(10**9)
    script_server.handler = flood
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # thread switches everywhere: races surface in a few runs
    try:
        conn = fast(script_server.url, max_queue=None)
        conn.connect(timeout=5)
        first = Recorder()
        conn.subscribe({"ticks": "R_100"}, first)
        first.wait(5)
        late: list[list[int]] = []
        for _ in range(300):
            joined = Recorder()
            sub = conn.subscribe({"ticks": "R_100"}, joined)
            numbers = [m["tick"]["n"] for m in joined.wait(3)]
            if numbers != sorted(numbers):
                late.append(numbers[:3])
            sub.forget()
        assert late == [], f"replays that came after newer messages: {late[:5]}"
        conn.close()
    finally:
        sys.setswitchinterval(switch)
        flood.close()


def test_a_drop_in_the_middle_of_a_restore_never_kills_a_subscription(
    deriv_server: LocalServer,
) -> None:
    # Regression: an old restore thread could send on a new link (Deriv then answers
    # AlreadySubscribed, which killed the user's Subscription), and the restore's failure
    # path aborted whatever link was current.
    conn = fast(deriv_server.url, request_timeout=3.0, reconnect_delay=0.001)
    opens = Recorder()
    errors = Recorder()
    conn.on("open", opens)
    conn.on("error", lambda e: errors(e.error))
    conn.connect(timeout=5)
    proposal = {"proposal": 1, "basis": "stake", "contract_type": "CALL", "currency": "USD",
                "duration": 5, "duration_unit": "t", "symbol": "R_100"}  # fmt: skip
    subs = [conn.subscribe({**proposal, "amount": 10 + i}, lambda m: None) for i in range(25)]
    handshakes = [0]
    conn.on("open", lambda e: handshakes.__setitem__(0, handshakes[0] + 1))
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # thread switches everywhere: races surface in a few runs
    try:

        def proposals() -> int:
            return sum("proposal" in r for r in deriv_server.requests)

        for _ in range(8):
            before = proposals()
            deriv_server.drop()
            # In the middle of the restore: the first re-subscribes arrived, more are coming.
            assert wait_until(lambda before=before: proposals() > before)
            deriv_server.drop()
            assert wait_until(lambda: conn.ready_state == Connection.OPEN, 10)
    finally:
        sys.setswitchinterval(switch)
    assert all(s.active for s in subs)
    assert [e for e in errors.items if "AlreadySubscribed" in str(e)] == []
    conn.close()


def test_retry_connects_a_bot_started_during_an_outage(deriv_server: LocalServer) -> None:
    # Regression: a first connect was never retried: a bot started during an outage exited.
    deriv_server.refuse(3, 503)
    conn = fast(deriv_server.url)
    errors = Recorder()
    conn.on("error", errors)
    conn.connect(timeout=5, retry=True)
    assert len(errors.items) == 3
    assert conn.request({"ping": 1})["ping"] == "pong"
    conn.close()


def test_without_retry_a_failed_first_connect_is_final(deriv_server: LocalServer) -> None:
    deriv_server.refuse(1, 503)
    conn = fast(deriv_server.url)
    with pytest.raises(ConnectionError):
        conn.connect(timeout=5)
    assert conn.ready_state == Connection.CLOSED


def test_keepalive_without_timeout_piles_up_nothing(script_server: ScriptServer) -> None:
    # Regression: with keepalive_timeout=None and no answer to pings, one pending entry
    # piled up per ping.
    script_server.handler = lambda ws, data: None  # never answers
    conn = Connection(url=script_server.url, keepalive_interval=0.02, keepalive_timeout=None)
    conn.connect(timeout=5)
    script_server.wait_frames(5)
    assert len(conn._outbound.pending) == 0
    conn.close()


def test_a_reconnect_gets_its_own_handshake_timeout(deriv_server: LocalServer) -> None:
    # Regression: a reconnect reused the first connect(timeout=...) as its handshake
    # timeout: a 0.5 s first connect made every later handshake fail after 0.5 s.
    proxy = SlowProxy(deriv_server.port, {1: 0.8})  # the 2nd handshake is answered in 0.8 s
    try:
        conn = fast(proxy.url(), request_timeout=5.0)
        opens = Recorder()
        errors = Recorder()
        conn.on("open", opens)
        conn.on("error", errors)
        conn.connect(timeout=0.5)
        deriv_server.drop()
        assert len(opens.wait(2, timeout=5)) == 2
        assert errors.items == []
        conn.close()
    finally:
        proxy.close()


def test_no_callback_is_lost_when_close_races_send_request(deriv_server: LocalServer) -> None:
    # Regression: events posted after the dispatcher's stop were silently dropped (a
    # send_request callback racing close() could vanish). Now every call either raises or
    # is called back exactly once, whatever the timing.
    for round_ in range(20):
        _race_close_with_send_requests(deriv_server.url, round_)


def _race_close_with_send_requests(url: str, round_: int) -> None:
    conn = fast(url)
    conn.connect(timeout=5)
    counts: dict[int, int] = {}
    raised: list[int] = []
    lock = threading.Lock()

    def fire(worker: int) -> None:
        for i in range(40):
            key = worker * 1000 + i

            def callback(result: Any, key: int = key) -> None:
                with lock:
                    counts[key] = counts.get(key, 0) + 1

            try:
                conn.send_request({"ping": 1}, callback)
            except (ConnectionClosedError, InvalidStateError):
                raised.append(key)

    workers = [threading.Thread(target=fire, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(0.001 * (round_ % 5))  # only to spread close() over the sends
    conn.close()
    for worker in workers:
        worker.join(5)
    assert conn.wait(5)
    keys = {w * 1000 + i for w in range(4) for i in range(40)}
    assert set(raised) | set(counts) == keys
    assert not set(raised) & set(counts)
    assert all(v == 1 for v in counts.values())


def test_a_keepalive_death_is_reported_on_its_own_link_only(deriv_server: LocalServer) -> None:
    # Regression: the "keepalive timeout" reason could be reported for an unrelated later
    # drop. The reason now belongs to the link the keepalive aborted.
    conn = fast(deriv_server.url, keepalive_interval=0.2, keepalive_timeout=0.2)
    closes = Recorder()
    opens = Recorder()
    conn.on("close", closes)
    conn.on("open", opens)
    conn.connect(timeout=5)
    deriv_server.stall()
    first = closes.wait(1)[0]
    assert first.reason == "keepalive timeout"
    deriv_server.resume()
    opens.wait(2)
    deriv_server.drop()
    second = closes.wait(2)[1]
    assert second.code == 1006 and second.reason == ""
    conn.close()


# ----------------------------------------------------------------- found by the docs review


def test_invalid_app_id_ends_the_connection_itself(script_server: ScriptServer) -> None:
    # Deriv's InvalidAppID ends the connection (error, then close(will_reconnect=False)),
    # also from a server that keeps the socket open after saying so.
    def refuse(ws: ServerConnection, data: Any) -> None:
        error = {"code": "InvalidAppID", "message": "Your app_id is invalid."}
        ws.send(json.dumps({"error": error, "msg_type": "ping", "req_id": data["req_id"]}))

    script_server.handler = refuse
    conn = fast(script_server.url)
    errors = Recorder()
    closes = Recorder()
    conn.on("error", lambda e: errors(e.error))
    conn.on("close", closes)
    conn.connect(timeout=5)
    with pytest.raises(APIError):
        conn.request({"ping": 1})
    assert conn.wait(5)
    assert [e.code for e in errors.items] == ["InvalidAppID"]
    assert [c.will_reconnect for c in closes.items] == [False]


def test_the_last_close_comes_after_every_on_end_and_callback(deriv_server: LocalServer) -> None:
    conn = fast(deriv_server.url, max_reconnect_attempts=0)
    order = Recorder()
    conn.on("close", lambda e: order(("close", e.will_reconnect)))
    conn.connect(timeout=5)
    conn.subscribe({"ticks": "R_100"}, lambda m: None, on_end=lambda s: order(("on_end", None)))
    deriv_server.stall()
    conn.send_request({"ping": 1}, lambda r: order(("callback", type(r).__name__)))
    deriv_server.drop()
    assert conn.wait(5)
    deriv_server.resume()
    assert order.items[-1] == ("close", False)
    assert ("on_end", None) in order.items and ("callback", "ConnectionClosedError") in order.items


def test_open_after_a_reconnect_comes_after_the_streams_first_messages(
    deriv_server: LocalServer,
) -> None:
    for _ in range(10):
        conn = fast(deriv_server.url)
        order: list[Any] = []
        conn.on("open", lambda e, order=order: order.append("open"))
        conn.connect(timeout=5)
        sub = conn.subscribe(
            {"ticks": "R_100"}, lambda m, order=order: (order.append(m["subscription"]["id"]),)
        )
        old = sub.id
        deriv_server.drop()
        assert wait_until(lambda order=order: order.count("open") == 2)
        after = order[order.index(old) :]
        new_ids = [x for x in after if x not in ("open", old)]
        assert new_ids, order
        assert after.index(new_ids[0]) < after.index("open"), order
        conn.close()


def test_send_request_on_a_connection_that_ended_raises_connection_closed(
    deriv_server: LocalServer,
) -> None:
    conn = fast(deriv_server.url, reconnect=False)
    conn.connect(timeout=5)
    deriv_server.drop()
    assert conn.wait(5)
    with pytest.raises(ConnectionClosedError):
        conn.send_request({"ping": 1}, lambda r: None)
    with pytest.raises(ConnectionClosedError):
        conn.request({"ping": 1})
    conn.close()
    with pytest.raises(InvalidStateError):
        conn.send_request({"ping": 1}, lambda r: None)


def test_with_and_an_infinite_request_timeout_block_until_open(deriv_server: LocalServer) -> None:
    with Connection(url=deriv_server.url, request_timeout=math.inf) as conn:
        assert conn.ready_state == Connection.OPEN
    conn = Connection(url=deriv_server.url)
    conn.connect(timeout=math.inf)
    assert conn.ready_state == Connection.OPEN
    conn.close()
