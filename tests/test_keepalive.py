"""deriv_sdk.keepalive: the ping timer and its pong deadline, with a fake send_ping."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from deriv_sdk.keepalive import Keepalive

WAIT = 5.0  # the bound of every blocking wait
NAME = "deriv_sdk-keepalive-test"


class FakePing:
    """Records every ping; the test answers it by calling the queued ``on_answer``."""

    def __init__(self, sent: bool = True) -> None:
        self.sent = sent
        self.pings: queue.Queue[Callable[[], None]] = queue.Queue()
        self.count = 0
        self.threads: list[threading.Thread] = []
        self.contexts: list[object] = []

    def __call__(self, context: object, on_answer: Callable[[], None] | None) -> bool:
        self.count += 1
        self.contexts.append(context)
        self.threads.append(threading.current_thread())
        self.pings.put(on_answer or (lambda: None))
        return self.sent

    def next(self) -> Callable[[], None]:
        return self.pings.get(timeout=WAIT)


class Dead:
    def __init__(self) -> None:
        self.calls = 0
        self.contexts: list[object] = []
        self.event = threading.Event()

    def __call__(self, context: object) -> None:
        self.calls += 1
        self.contexts.append(context)
        self.event.set()


def keepalive_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("deriv_sdk-keepalive")]


@pytest.fixture
def made() -> Iterator[list[Keepalive]]:
    instances: list[Keepalive] = []
    yield instances
    for ka in instances:
        ka.stop()
    for thread in keepalive_threads():
        thread.join(WAIT)


def make(made: list[Keepalive], interval: float, timeout: float | None, ping: FakePing, dead):
    ka = Keepalive(interval, timeout, ping, dead, name=NAME)
    made.append(ka)
    return ka


def test_pings_every_interval_while_answered(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.05, 2.0, ping, dead)
    started = time.monotonic()
    ka.start()
    for _ in range(3):
        ping.next()()  # answer each ping: the next one follows
    elapsed = time.monotonic() - started
    assert elapsed >= 0.05 * 3 * 0.9
    assert all(t.name == NAME for t in ping.threads)
    ka.stop()
    assert dead.calls == 0


def test_answer_schedules_next_ping_after_interval(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.05, 2.0, ping, dead)
    ka.start()
    answer = ping.next()
    with pytest.raises(queue.Empty):
        ping.pings.get(timeout=0.15)  # unanswered: no next ping, only the deadline
    answer()
    ping.next()
    assert dead.calls == 0
    ka.stop()


def test_unanswered_ping_calls_on_dead_once(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.02, 0.05, ping, dead)
    ka.start()
    answer = ping.next()
    assert dead.event.wait(WAIT)
    time.sleep(0.15)  # only to show that nothing more happens
    assert dead.calls == 1
    assert ping.count == 1
    answer()  # a late answer does not revive it
    time.sleep(0.1)
    assert ping.count == 1
    assert dead.calls == 1


def test_on_dead_runs_on_a_timer_thread(made: list[Keepalive]) -> None:
    ping = FakePing()
    where: list[str] = []
    done = threading.Event()

    def on_dead(context: object) -> None:
        where.append(threading.current_thread().name)
        done.set()

    ka = make(made, 0.01, 0.02, ping, on_dead)
    ka.start()
    assert done.wait(WAIT)
    assert where == [NAME]


def test_stop_prevents_further_pings(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.03, 0.05, ping, dead)
    ka.start()
    answer = ping.next()
    answer()
    ka.stop()
    ka.stop()  # idempotent
    count = ping.count
    time.sleep(0.2)  # only to show that nothing happens
    assert ping.count == count
    assert dead.calls == 0


def test_stop_before_first_ping(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.03, 0.05, ping, dead)
    ka.start()
    ka.stop()
    time.sleep(0.15)  # only to show that nothing happens
    assert ping.count == 0
    assert dead.calls == 0


def test_stop_with_pending_deadline_never_calls_on_dead(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.01, 0.05, ping, dead)
    ka.start()
    ping.next()  # not answered: the deadline timer is armed
    ka.stop()
    time.sleep(0.15)  # only to show that nothing happens
    assert dead.calls == 0


def test_stale_timers_after_stop_do_nothing(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 10.0, 10.0, ping, dead)
    ka.start()
    gen, token = ka._gen, ka._token
    ka.stop()
    # What a timer that had already fired would run, after stop():
    ka._tick(token)
    ka._deadline(token)
    ka._answered(gen, 0)
    assert ping.count == 0
    assert dead.calls == 0
    assert ka._timer is None
    assert keepalive_threads() == []


def test_stale_timer_after_restart_does_nothing(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 10.0, 10.0, ping, dead)
    ka.start()
    old_token = ka._token
    ka.start()  # restart: a new generation
    ka._tick(old_token)
    assert ping.count == 0
    ka.stop()


def test_stop_called_during_send_ping(made: list[Keepalive]) -> None:
    dead = Dead()
    calls = []
    holder: list[Keepalive] = []

    def send_ping(context: object, on_answer: Callable[[], None] | None) -> bool:
        calls.append(on_answer)
        holder[0].stop()  # from the timer thread itself: must not join itself
        return True

    ka = Keepalive(0.01, 0.02, send_ping, dead, name=NAME)
    holder.append(ka)
    made.append(ka)
    ka.start()
    for thread in keepalive_threads():
        thread.join(WAIT)
    time.sleep(0.1)  # only to show that nothing happens
    assert len(calls) == 1
    assert dead.calls == 0


def test_timeout_none_keeps_pinging_without_on_dead(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.02, None, ping, dead)
    ka.start()
    for _ in range(4):
        ping.next()  # never answered
    assert dead.calls == 0
    ka.stop()


@pytest.mark.parametrize(
    "timeout",
    [
        None,
        2.0,
    ],
)
def test_answer_before_send_ping_returns_keeps_one_ping_chain(
    made: list[Keepalive], timeout: float | None
) -> None:
    # The reader thread may report the pong before send_ping() has returned.
    times: queue.Queue[float] = queue.Queue()

    def send_ping(context: object, on_answer: Callable[[], None] | None) -> bool:
        times.put(time.monotonic())
        if on_answer is not None:
            on_answer()
        return True

    ka = make(made, 0.05, timeout, send_ping, Dead())  # type: ignore[arg-type]
    ka.start()
    stamps = [times.get(timeout=WAIT) for _ in range(4)]
    ka.stop()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.05 * 0.5, f"pings too close together: {gaps}"


def test_send_failure_stops_pinging_without_on_dead(made: list[Keepalive]) -> None:
    ping, dead = FakePing(sent=False), Dead()
    ka = make(made, 0.02, 0.03, ping, dead)
    ka.start()
    ping.next()
    time.sleep(0.15)  # only to show that nothing happens
    assert ping.count == 1
    assert dead.calls == 0


def test_timer_threads_named_and_gone_after_stop(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.03, 5.0, ping, dead)
    ka.start()
    assert [t.name for t in keepalive_threads()] == [NAME]
    assert all(t.daemon for t in keepalive_threads())
    ping.next()()
    ping.next()
    ka.stop()
    for thread in keepalive_threads():
        thread.join(WAIT)  # none may keep running, or re-arm itself
    assert keepalive_threads() == []


def test_no_timer_thread_alive_when_stop_returns(made: list[Keepalive]) -> None:
    """A timer thread still inside send_ping() (its answer already scheduled the next
    timer) must be joined by stop() too."""
    dead = Dead()
    answered = threading.Event()
    release = threading.Event()
    joined: list[threading.Thread] = []

    def send_ping(context: object, on_answer: Callable[[], None] | None) -> bool:
        me = threading.current_thread()
        real_join = me.join

        def join(timeout: float | None = None) -> None:
            joined.append(me)
            release.set()  # stop() joins this thread: let send_ping finish
            real_join(timeout)

        me.join = join  # type: ignore[method-assign]
        on_answer()  # the pong arrives at once (the reader thread reports it)
        answered.set()
        release.wait(WAIT)  # still finishing send_ping
        return True

    ka = Keepalive(0.01, 1.0, send_ping, dead, name=NAME)
    made.append(ka)
    ka.start()
    try:
        assert answered.wait(WAIT)
        ka.stop()
        alive = [t for t in keepalive_threads() if t.is_alive()]
    finally:
        release.set()
    assert len(joined) == 1
    assert alive == []
    assert dead.calls == 0


@pytest.mark.parametrize(("interval", "timeout"), [(0, 1.0), (-1.0, 1.0), (1.0, 0), (1.0, -0.5)])
def test_invalid_args(interval: float, timeout: float | None) -> None:
    with pytest.raises(ValueError):
        Keepalive(interval, timeout, FakePing(), Dead())


def test_default_thread_name() -> None:
    ping = FakePing()
    ka = Keepalive(10.0, 10.0, ping, Dead())
    ka.start()
    try:
        assert [t.name for t in keepalive_threads()] == ["deriv_sdk-keepalive"]
    finally:
        ka.stop()
    assert keepalive_threads() == []


def test_the_context_of_start_reaches_send_ping_and_on_dead(made: list[Keepalive]) -> None:
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.02, 0.02, ping, dead)
    link = object()
    ka.start(link)
    ping.next()  # never answered
    assert dead.event.wait(WAIT)
    assert ping.contexts == [link] and dead.contexts == [link]


def test_timeout_none_awaits_no_answer(made: list[Keepalive]) -> None:
    # No timeout: send_ping gets no on_answer, so nothing is registered per ping.
    seen: queue.Queue[object] = queue.Queue()

    def send_ping(context: object, on_answer: Callable[[], None] | None) -> bool:
        seen.put(on_answer)
        return True

    ka = make(made, 0.02, None, send_ping, Dead())  # type: ignore[arg-type]
    ka.start()
    assert [seen.get(timeout=WAIT) for _ in range(3)] == [None, None, None]


def test_a_paused_reader_keeps_the_pings_going_and_is_never_judged(made: list[Keepalive]) -> None:
    # Back-pressure: while the reader does not read, an answer cannot be seen; the link is not
    # declared dead, but the pings go on (the server must not see an idle link).
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.02, 0.05, ping, dead)
    ka.start()
    ping.next()  # sent, never answered: the deadline is armed
    ka.pause()  # the reader paused reading: the answer could not be seen
    for _ in range(4):
        ping.next()  # the pings go on, unanswered (sent while paused: never judged)
    assert dead.calls == 0
    ka.resume()
    # The first ping sent while reading, unanswered with no pause since, decides.
    assert dead.event.wait(WAIT)
    assert dead.calls == 1 and ping.count >= 6


def test_pauses_faster_than_a_timer_starts_never_starve_the_pings(made: list[Keepalive]) -> None:
    # Regression (a loaded run): resume() scheduled the overdue ping on a new timer thread,
    # and the reader's next pause, a moment later, cancelled it before it ran: under
    # sustained back-pressure no ping went out for seconds.
    ping, dead = FakePing(), Dead()
    ka = make(made, 0.02, 0.05, ping, dead)
    ka.start()
    stop = threading.Event()

    def reader() -> None:  # a batch fills the queue again at once: pause right after resume
        while not stop.is_set():
            ka.pause()
            stop.wait(0.002)  # (the listeners drain half the queue)
            ka.resume()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        time.sleep(2.0)  # (the pings meanwhile: one per max(interval, timeout) = 0.05 s)
        # Not a speed figure: ~40 are due; before the fix 2 to 8 per second went out.
        assert ping.count >= 20 and dead.calls == 0, ping.count
    finally:
        stop.set()
        thread.join(WAIT)


def test_a_replaced_timer_that_already_fired_does_nothing(made: list[Keepalive]) -> None:
    # Only the newest timer acts: a deadline that fired just as the answer replaced it
    # (waiting for the lock meanwhile) must not judge, nor start a second chain of pings.
    ping, dead = FakePing(), Dead()
    ka = make(made, 10.0, 10.0, ping, dead)  # nothing fires by itself during the test
    ka.start()
    ka._tick(ka._token)  # the first ping, as its timer would send it
    deadline = ka._token
    ping.next()()  # answered: the next ping is scheduled, the deadline replaced
    ka._deadline(deadline)
    ka._tick(deadline)
    assert ping.count == 1 and dead.calls == 0


def test_only_the_newest_pings_answer_counts(made: list[Keepalive]) -> None:
    # Under back-pressure a second ping may go out before the first one's answer is read;
    # that late answer says nothing about the second ping, which is judged on its own.
    ping, dead = FakePing(), Dead()
    ka = make(made, 10.0, 10.0, ping, dead)  # the test fires the timers itself
    ka.start()
    ka._tick(ka._token)
    first = ping.next()
    ka.pause()
    ka._deadline(ka._token)  # not judged (paused): the next ping is scheduled instead
    ka.resume()
    ka._tick(ka._token)
    ping.next()  # the second ping, never answered
    first()  # the first one's late answer
    ka._deadline(ka._token)
    assert dead.calls == 1


class BlockedPing(FakePing):
    """A send that blocks until ``release`` is set (a peer that stopped reading)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def __call__(self, context: object, on_answer: Callable[[], None] | None) -> bool:
        sent = super().__call__(context, on_answer)
        self.release.wait(WAIT)
        return sent


def test_a_blocked_ping_send_while_paused_piles_up_nothing(made: list[Keepalive]) -> None:
    # Both directions stuck (our reader paused, the peer not reading our pings): no new ping
    # may go out behind the blocked one (a blocked timer thread each); once reading again,
    # the link is judged.
    ping, dead = BlockedPing(), Dead()
    ka = make(made, 10.0, 10.0, ping, dead)  # the test fires the timers itself
    ka.start()
    ka.pause()
    sender = threading.Thread(target=ka._tick, args=(ka._token,))
    sender.start()
    try:
        ping.next()  # sent while paused, and blocked
        for _ in range(3):
            ka._deadline(ka._token)  # paused: postponed, no new ping
        assert ping.count == 1 and dead.calls == 0
        ka.resume()
        ka._deadline(ka._token)  # reading again: the judgement starts now
        assert dead.calls == 0
        ka._deadline(ka._token)  # a whole timeout while reading, still blocked: dead
        assert dead.calls == 1 and ping.count == 1
    finally:
        ping.release.set()
        sender.join(WAIT)
