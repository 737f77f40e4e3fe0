"""Regressions found by the review of the review fixes: each test failed on the code before
its fix (a followed buy beside the user's own contract stream, a double ``forget``, the
keepalive under sustained back-pressure, a timer per message while a listener waits)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest

from deriv_sdk.testing import LocalServer
from tests.support import Events, Recorder, fast
from tests.test_regressions_review import BUY, TOKEN, contract_of
from tests.wsserver import wait_until


def test_a_followed_buy_and_the_users_own_contract_stream_survive_a_reconnect(
    deriv_server: LocalServer,
) -> None:
    # Regression: after a reconnect both became the same proposal_open_contract subscribe on
    # one link; Deriv refused the second (AlreadySubscribed) and that Subscription ended.
    conn = fast(deriv_server.url)
    events = Events(conn, ("open", "error"))
    ended: list[Any] = []
    with conn:
        conn.authorize(TOKEN)
        bought = Recorder()
        buy = conn.subscribe(BUY, bought, on_end=ended.append)
        contract = contract_of(bought.wait(1)[0])
        own = Recorder()
        poc = {"proposal_open_contract": 1, "contract_id": contract}
        mine = conn.subscribe(poc, own, on_end=ended.append)
        seen = len(own.items)
        deriv_server.drop()
        events.wait("open", reconnected=True)
        own.wait(seen + 1)  # the user's stream is back
        assert buy.active and mine.active and ended == [] and events.of("error") == []
        assert {contract_of(m) for m in own.items} == {contract}
        assert sum(1 for r in deriv_server.requests if "buy" in r) == 1


@pytest.mark.deriv_server(tick_interval=0.002)
def test_forget_sends_one_forget_while_updates_keep_coming(deriv_server: LocalServer) -> None:
    # Regression: an update arriving during the forget's round trip made the SDK send a
    # second forget of its own (rate limit spent, an error reply to nobody).
    with fast(deriv_server.url) as conn:
        deriv_server.delay(0.05)  # a round trip as over a network: updates keep coming
        for _ in range(3):
            got = Recorder()
            sub = conn.subscribe({"ticks": "R_100"}, got)
            got.wait(3)
            before = sum(1 for r in deriv_server.requests if "forget" in r)
            conn.forget(sub.id)
            assert conn.request({"ping": 1})["ping"] == "pong"  # (a stray forget is in first)
            assert sum(1 for r in deriv_server.requests if "forget" in r) == before + 1


@pytest.mark.deriv_server(tick_interval=0.005)
def test_sustained_back_pressure_never_starves_the_keepalive(deriv_server: LocalServer) -> None:
    # Regression: every pause restarted the ping interval; pausing more often than once per
    # interval meant no ping ever went out (and Deriv closes a link idle for 2 minutes).
    conn = fast(deriv_server.url, max_queue=20, keepalive_interval=0.3, keepalive_timeout=1.0)

    def slow(message: dict[str, Any]) -> None:
        time.sleep(0.007)  # a little slower than the stream: reading pauses again and again

    with conn:
        conn.subscribe({"ticks": "R_100"}, slow)
        assert wait_until(lambda: sum(1 for r in deriv_server.requests if "ping" in r) >= 3, 5)


@pytest.mark.deriv_server(tick_interval=0.0005)
def test_a_listener_waiting_under_back_pressure_starts_no_timer_per_message(
    deriv_server: LocalServer,
) -> None:
    # Regression: while a listener waited for an answer, the reader paused and restarted the
    # keepalive (a new timer thread) for every frame it read: hundreds per request.
    conn = fast(deriv_server.url, max_queue=4, keepalive_interval=5.0)
    started: list[str] = []
    results = Recorder()
    count = [0]

    def first_call(frame: Any, event: str, arg: Any) -> None:
        started.append(threading.current_thread().name)
        sys.setprofile(None)

    def listener(message: dict[str, Any]) -> None:
        count[0] += 1
        if count[0] < 10:
            time.sleep(0.02)  # the queue fills: reading pauses
        elif count[0] == 10:
            deriv_server.delay(0.5)
            threading.setprofile(first_call)  # names of the threads started from now on
            try:
                results(conn.request({"time": 1}, timeout=5)["msg_type"])
            finally:
                threading.setprofile(None)  # type: ignore[arg-type]
                deriv_server.delay(0)

    with conn:
        conn.subscribe({"ticks": "R_100"}, listener)
        assert results.wait(1, timeout=10) == ["time"]
    timers = [name for name in started if name.startswith("deriv_sdk-keepalive")]
    assert len(timers) <= 2, len(timers)
