"""The keepalive ping on ``threading.Timer``, with its pong deadline.

Deriv closes a connection that has been idle for about two minutes; a ping every
``interval`` seconds keeps it open, and a ping that gets no answer within ``timeout``
seconds shows that the link is dead although TCP has not noticed (a stalled server, a
dead NAT entry, a cable pulled somewhere far away).

One timer acts at a time: the interval timer sends the ping and arms the deadline timer;
the pong (reported by the reader thread, never by the dispatch thread, so a slow listener
cannot delay it) schedules the next ping. Every timer carries a token, and only the newest
one acts (a timer that already fired when it was replaced, or after ``stop()``, does
nothing); every answer carries its ping's number and generation, and only the answer to the
newest ping of the current ``start()`` counts.

Back-pressure (``pause()``/``resume()``): while the reader does not read, no ping is judged:
its answer may be waiting, unread, behind the backlog, and a link that keeps the reader busy
is alive. A deadline that passes when reading has paused since its ping went out schedules
the next ping (one interval after the last), so the pings go on, at most one at a time,
every ``max(interval, timeout)``; a ping whose send has not returned gets its judgement
postponed instead, with no new ping behind it. The first ping sent while reading, and
unanswered ``timeout`` seconds later with no pause since, decides.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Keepalive"]

logger = logging.getLogger("deriv_sdk.keepalive")

# send_ping(context, on_answer) sends one ping on the link ``context`` (what start() was
# given) and arranges for on_answer() to be called when its answer arrives (on_answer is None
# when no answer is awaited: timeout None); it returns False when nothing could be sent.
SendPing = Callable[[Any, Callable[[], None] | None], bool]


class Keepalive:
    """Pings every ``interval`` seconds; calls ``on_dead(context)`` when a ping goes
    unanswered. ``context`` (the link) is what ``start()`` was given: a timer of an older
    start can never act on a newer link.

    Args:
        interval: Seconds between pings.
        timeout: Seconds to wait for the answer; None never declares the link dead.
        send_ping: See ``SendPing``.
        on_dead: Called once, on a timer thread, when the pong deadline passes.
        name: The timer threads' name.
    """

    def __init__(
        self,
        interval: float,
        timeout: float | None,
        send_ping: SendPing,
        on_dead: Callable[[Any], None],
        name: str = "deriv_sdk-keepalive",
    ) -> None:
        if interval <= 0:
            raise ValueError("keepalive_interval must be > 0 (or None to turn it off)")
        if timeout is not None and timeout <= 0:
            raise ValueError("keepalive_timeout must be > 0 (or None)")
        self.interval = interval
        self.timeout = timeout
        self._send_ping = send_ping
        self._on_dead = on_dead
        self._name = name
        self._lock = threading.Lock()
        self._gen = 0  # per start()/stop(): answers from an older start never count
        self._token = 0  # per scheduled timer: only the newest acts
        self._seq = 0  # per ping: only the newest ping's answer counts
        self._running = False
        self._timer: threading.Timer | None = None  # the one that will fire next
        self._threads: list[threading.Timer] = []  # every timer thread maybe still running
        self._sent_at = 0.0
        self._awaiting = False
        self._sending = False  # send_ping() has not returned yet
        self._context: Any = None
        self._paused = False  # the reader is not reading (back-pressure)
        self._pauses = 0  # how many times it paused
        self._judged_from = 0  # _pauses when the awaited ping's judgement began (-1: never)

    def start(self, context: Any = None) -> None:
        """Starts pinging ``context`` (first ping after one interval); restarts if running."""
        with self._lock:
            self._context = context
            self._gen += 1
            self._running = True
            self._awaiting = False
            self._paused = False
            old = self._timer
            self._schedule(self.interval, self._tick)
        if old is not None:
            old.cancel()

    def stop(self) -> None:
        """Stops pinging; joins the timer thread unless called from it. Idempotent."""
        with self._lock:
            self._gen += 1
            self._token += 1
            self._running = False
            self._timer = None
            timers, self._threads = self._threads, []
        # Every timer thread, not only the newest: an older one may still be inside
        # send_ping() after the answer already scheduled its successor.
        current = threading.current_thread()
        for timer in timers:
            timer.cancel()
            if timer is not current:
                timer.join(5.0)

    def pause(self) -> None:
        """The reader stopped reading on purpose (back-pressure): an answer cannot be seen
        until ``resume()``, so no ping is judged meanwhile. Never blocks (safe from the
        reader thread)."""
        with self._lock:
            self._paused = True
            self._pauses += 1

    def resume(self, context: Any = None) -> None:
        """The reader reads again (after ``pause()``)."""
        with self._lock:
            if context is not None:
                self._context = context
            self._paused = False

    def _schedule(self, delay: float, fn: Callable[[int], None]) -> None:
        # Called with self._lock held. The new timer replaces the one that would fire next.
        self._token += 1
        timer = threading.Timer(delay, fn, args=(self._token,))
        timer.name = self._name
        timer.daemon = True  # never keeps the interpreter alive; stop() joins it anyway
        self._timer = timer
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(timer)
        timer.start()

    def _tick(self, token: int) -> None:
        with self._lock:
            if token != self._token or not self._running:
                return
            self._seq += 1
            gen, seq = self._gen, self._seq
            self._sent_at = time.monotonic()
            # With no timeout, answers are not awaited: the pings just go on.
            self._awaiting = self.timeout is not None
            # A ping sent while reading is paused is never judged (its answer may be read
            # long after); the first one sent while reading is.
            self._judged_from = -1 if self._paused else self._pauses
            self._sending = True
            if self.timeout is not None:
                # Armed before sending: a send that blocks (a peer that stopped reading)
                # counts against the deadline too.
                self._schedule(self.timeout, self._deadline)
            context = self._context
        # With no timeout nothing waits for the answer: no entry piles up per ping.
        on_answer = None if self.timeout is None else lambda: self._answered(gen, seq)
        try:
            sent = self._send_ping(context, on_answer)
        except Exception:  # a bug of ours: say so, and let the deadline judge the link
            logger.exception("sending the keepalive ping failed")
            sent = True
        with self._lock:
            if gen != self._gen or not self._running:
                return
            if seq == self._seq:
                self._sending = False
            if not sent:
                # The link is going down; the reader thread will notice and report it.
                self._awaiting = False
                return
            if self.timeout is None:
                self._schedule(self.interval, self._tick)

    def _answered(self, gen: int, seq: int) -> None:
        with self._lock:
            if gen != self._gen or seq != self._seq or not self._running or not self._awaiting:
                return
            self._awaiting = False
            old = self._timer
            delay = max(0.0, self.interval - (time.monotonic() - self._sent_at))
            self._schedule(delay, self._tick)
        if old is not None:
            old.cancel()

    def _deadline(self, token: int) -> None:
        with self._lock:
            if token != self._token or not self._running or not self._awaiting:
                return
            if self._paused or self._pauses != self._judged_from:
                # Reading paused since this ping's judgement began: its answer may be unread
                # behind the backlog. Not judged: the next ping, one interval after this one,
                # is (a send still blocked gets its judgement started again, no new ping).
                if self._sending:
                    self._judged_from = -1 if self._paused else self._pauses
                    self._schedule(self.timeout or self.interval, self._deadline)
                else:
                    delay = max(0.0, self.interval - (time.monotonic() - self._sent_at))
                    self._schedule(delay, self._tick)
                return
            self._running = False
            self._timer = None
            context = self._context
        logger.warning("no answer to the keepalive ping within %.3gs: link is dead", self.timeout)
        self._on_dead(context)
