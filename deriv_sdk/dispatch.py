"""The dispatch thread: runs every listener and callback, one at a time, in arrival order.

The reader thread never runs user code. It hands over what it read as one ``Batch`` per
read (the messages and events of that read, in order); other threads hand over single
``Work`` items (an event, a callback, the replay for a joining subscription). Both go through
one ``queue.SimpleQueue``, so everything runs in the order it was handed over.

Memory is bounded: at most ``max_queue`` messages wait here. The reader asks
``must_pause()`` after each read; when the limit is reached it stops reading the socket
(TCP then pushes back on the server) and waits in ``wait_drained()`` until half of the queue
has run. Nothing is dropped.

The thread also expires ``send_request`` callbacks whose deadline has passed: it bounds its
wait on the queue by the pending table's earliest deadline (an O(1) read).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .events import ErrorEvent, Event, ListenerRegistry
from .pending import Pending, PendingTable
from .subscriptions import Subscription

__all__ = ["Batch", "Dispatcher", "Work"]

logger = logging.getLogger("deriv_sdk.dispatch")

#: One piece of work for the dispatch thread: ``fn(arg)``.
Work = tuple[Callable[[Any], None], Any]


class Batch:
    """What the reader hands over per read: its work items, in order, how many of them are
    messages (the unit of ``max_queue``), and whether any of them is ``urgent``.

    Not urgent: only ``message`` events of answers whose blocking caller has been woken
    already. Nobody waits for those, so the reader may hold such a batch for a moment and
    add the next reads to it, instead of waking the dispatch thread for every answer of a
    request loop (see ``reader.HOLD``).
    """

    __slots__ = ("items", "messages", "urgent")

    def __init__(self) -> None:
        self.items: list[Work] = []
        self.messages = 0
        self.urgent = False


def _noop(_: Any) -> None:
    return None


class Dispatcher:
    """One connection's dispatch thread and queue.

    Args:
        target: The Connection (the ``target`` of error events).
        listeners: Its listener registry.
        pending: Its pending table (the deadlines of callback entries).
        name: The thread's name.
        max_queue: Most messages waiting here before the reader pauses (None: no limit).
    """

    def __init__(
        self,
        target: Any,
        listeners: ListenerRegistry,
        pending: PendingTable,
        name: str,
        max_queue: int | None,
    ) -> None:
        self._target = target
        self._listeners = listeners
        self._pending = pending
        self._name = name
        self._max_queue = max_queue
        self._low_water = 0 if max_queue is None else max_queue // 2
        self._queue: queue.SimpleQueue[Batch | Work | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopped = False
        # Messages handed over / run: each counter is written by one thread only.
        self._posted = 0
        self._ran = 0
        self._drained = threading.Condition(threading.Lock())
        self._reader_waiting = False
        self._calls = 0  # blocking waits of listeners in progress (dispatch thread only)
        self.finished = threading.Event()  # set once the thread has run everything and ended
        self.finished.set()

    def _put(self, item: Batch | Work | None) -> None:
        if self._thread is None:
            # Started on first use: a connection nobody listens to needs no second thread.
            with self._start_lock:
                if self._thread is None:
                    if self._stopped:
                        logger.warning("work handed over after the connection ended: dropped")
                        return
                    self.finished.clear()
                    thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                    thread.start()
                    self._thread = thread
        elif self._stopped and item is not None:
            logger.warning("work handed over after the connection ended: dropped")
            return
        self._queue.put(item)

    # -- handing work over (any thread) ------------------------------------------------

    def post(self, fn: Callable[[Any], None], arg: Any) -> None:
        """Queues ``fn(arg)`` to run on the dispatch thread."""
        self._put((fn, arg))

    def post_event(self, type: str, event: Event) -> None:
        """Queues ``event`` for the listeners of ``type`` (nothing when there are none: a
        listener added later only sees later events)."""
        if self._listeners.has(type):
            self._put((self.emit, (type, event)))

    def post_batch(self, batch: Batch) -> None:
        """Queues what the reader read (reader thread only)."""
        if batch.items:
            self._posted += batch.messages
            self._put(batch)

    def wake(self) -> None:
        """Makes the loop re-read the earliest deadline (a callback entry was added)."""
        self._put((_noop, None))

    # -- back-pressure (reader thread) ---------------------------------------------------

    def room(self) -> int | None:
        """How many more messages may be handed over before the limit (None: no limit)."""
        if self._max_queue is None or self._calls:
            return None  # (a listener waits for an answer: read on, see calling())
        return max(1, self._max_queue - (self._posted - self._ran))

    def must_pause(self) -> bool:
        """True when ``max_queue`` messages wait: the reader should stop reading (never while
        a listener waits for an answer: the reader must read it)."""
        return (
            self._max_queue is not None
            and self._posted - self._ran >= self._max_queue
            and not self._calls
        )

    @contextlib.contextmanager
    def calling(self) -> Iterator[None]:
        """Around a blocking wait for an answer (a request, a subscribe): on the dispatch
        thread, it lets a paused reader read on until the wait ends, or the listener would
        wait for an answer that the reader does not read until the listener returns."""
        if threading.current_thread() is not self._thread:
            yield
            return
        self._calls += 1
        if self._reader_waiting:
            with self._drained:
                self._drained.notify_all()
        try:
            yield
        finally:
            self._calls -= 1

    def wait_drained(self, stop: threading.Event, poll: float = 0.1) -> None:
        """Blocks until at most half of ``max_queue`` messages wait, or ``stop`` is set."""
        with self._drained:
            self._reader_waiting = True
            try:
                while (
                    self._posted - self._ran > self._low_water
                    and not stop.is_set()
                    and not self._calls
                ):
                    if self.finished.is_set() and self._thread is not None:
                        return  # the thread is gone: nothing will drain
                    self._drained.wait(poll)
            finally:
                self._reader_waiting = False

    @property
    def queued(self) -> int:
        """Messages handed over and not yet run."""
        return self._posted - self._ran

    # -- lifetime ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ends the thread once everything queued before has run."""
        with self._start_lock:
            if self._stopped:
                return
            self._stopped = True
            if self._thread is None:
                return
        self._queue.put(None)

    def join(self, timeout: float) -> bool:
        """Waits for the thread to end; False when it is still running (a stuck listener)."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def on_thread(self) -> bool:
        """True when called from the dispatch thread (i.e. from a listener)."""
        return threading.current_thread() is self._thread

    # -- on the dispatch thread ----------------------------------------------------------

    def call_user(self, fn: Callable[[Any], object], arg: Any) -> None:
        """Runs user code; an exception from it fires ``error`` and the stream goes on.

        ``BaseException`` too: a listener that calls ``sys.exit()`` must not end the thread
        that runs every other listener.
        """
        try:
            fn(arg)
        except BaseException as exc:
            self.listener_failed(exc)

    def deliver(self, sub: Subscription, seq: int, data: dict[str, Any], final: bool) -> None:
        """Calls ``sub``'s listener with message ``seq`` of its stream, unless the handle has
        had it (or a later one: a replay and a delivery may both be queued) or has ended; a
        stream's last message (``final``) reaches every handle it was meant for."""
        if (sub._active or (final and not sub._forgotten)) and seq > sub._seq:
            sub._seq = seq
            try:
                sub.listener(data)
            except BaseException as exc:
                self.listener_failed(exc)

    def run_user(self, item: tuple[Callable[[Any], object], Any]) -> None:
        """``Work`` form of ``call_user``: ``item`` is ``(fn, arg)``."""
        self.call_user(item[0], item[1])

    def listener_failed(self, exc: BaseException) -> None:
        self._listeners.emit("error", ErrorEvent(self._target, exc))

    def emit(self, item: tuple[str, Event]) -> None:
        """``Work`` that fires an event: ``item`` is ``(type, event)``."""
        self._listeners.emit(item[0], item[1])

    def _expire(self) -> None:
        for entry in self._pending.expire(time.monotonic()):
            self.run_entry(entry)

    def run_entry(self, entry: Pending) -> None:
        """Calls a resolved callback entry's callback with its result."""
        if entry.callback is not None:
            self.call_user(entry.callback, entry.result)

    def _ran_messages(self, n: int) -> None:
        self._ran += n
        if self._reader_waiting and self._posted - self._ran <= self._low_water:
            with self._drained:
                self._drained.notify_all()

    def _loop(self) -> None:
        get, pending = self._queue.get, self._pending
        while True:
            deadline = pending.next_deadline()
            if deadline is None:
                item = get()
            else:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    self._expire()
                    continue
                try:
                    item = get(timeout=min(wait, threading.TIMEOUT_MAX))
                except queue.Empty:
                    self._expire()
                    continue
            if item is None:
                self.finished.set()
                with self._drained:
                    self._drained.notify_all()
                return
            if type(item) is Batch:
                for fn, arg in item.items:
                    try:
                        fn(arg)
                    except BaseException:  # a bug of ours; user exceptions are caught closer
                        logger.exception("internal error on the dispatch thread")
                self._ran_messages(item.messages)
            else:
                fn, arg = item  # type: ignore[misc]
                try:
                    fn(arg)
                except BaseException:
                    logger.exception("internal error on the dispatch thread")
