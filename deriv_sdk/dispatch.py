"""The dispatch thread: runs every listener and callback, one at a time, in arrival order.

The io thread never runs user code; it hands each piece of work to this thread through
one ``queue.SimpleQueue`` as a ``(function, argument)`` pair (about a microsecond per
message). The thread also expires ``send_request`` callbacks whose deadline has passed,
by bounding its wait on the queue by the earliest deadline of the pending table.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .events import ErrorEvent, Event, ListenerRegistry, MessageEvent
from .pending import Pending, PendingTable
from .subscriptions import Subscription

__all__ = ["Dispatcher"]

logger = logging.getLogger("deriv_sdk.dispatch")

Work = tuple[Callable[[Any], None], Any]
# What the io thread hands over per message: the decoded data, the raw bytes, the stream
# handles to deliver it to, whether it is the stream's last message, and a callback entry.
Inbound = tuple[Any, bytes, tuple[Subscription, ...], bool, Pending | None]


def _noop(_: Any) -> None:
    return None


class Dispatcher:
    """One connection's dispatch thread and queue.

    Args:
        target: The Connection (the ``target`` of the events).
        listeners: Its listener registry.
        pending: Its pending table (for the deadlines of callback entries).
        name: The thread's name.
    """

    def __init__(
        self, target: Any, listeners: ListenerRegistry, pending: PendingTable, name: str
    ) -> None:
        self._target = target
        self._listeners = listeners
        self._pending = pending
        self._name = name
        self._queue: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopped = False
        self.finished = threading.Event()  # set once the thread has run everything and ended
        self.finished.set()

    def _put(self, work: Work | None) -> None:
        if self._thread is None:
            # Started on first use: a connection nobody listens to needs no second thread.
            with self._start_lock:
                if self._thread is None:
                    if self._stopped:
                        return
                    self.finished.clear()
                    self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                    self._thread.start()
        self._queue.put(work)

    def stop(self) -> None:
        """Ends the thread once everything queued before has run."""
        with self._start_lock:
            self._stopped = True
            if self._thread is None:
                return
        self._queue.put(None)

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def on_thread(self) -> bool:
        """True when called from the dispatch thread (i.e. from a listener)."""
        return threading.current_thread() is self._thread

    # -- handing work over (any thread) ------------------------------------------------

    def post(self, fn: Callable[[Any], None], arg: Any) -> None:
        self._put((fn, arg))

    def post_event(self, type: str, event: Event) -> None:
        if self._listeners.has(type):  # (a listener added later only sees later events)
            self._put((self._emit, (type, event)))

    def post_inbound(self, item: Inbound) -> None:
        self._put((self._inbound, item))

    def wake(self) -> None:
        """Makes the loop re-read the earliest deadline (a callback entry was added)."""
        self._put((_noop, None))

    def run_callback(self, entry: Pending) -> None:
        """Calls a resolved entry's callback: right here when ``inline``, else on the thread."""
        if entry.callback is None:
            return
        if entry.inline:
            entry.callback(entry.result)
        else:
            self._put((self._run_user, (entry.callback, entry.result)))

    # -- on the dispatch thread ----------------------------------------------------------

    def call_user(self, fn: Callable[[Any], object], arg: Any) -> None:
        """Runs user code; an exception from it fires ``error`` and the stream goes on."""
        try:
            fn(arg)
        except Exception as exc:
            self.listener_failed(exc)

    def _run_user(self, item: tuple[Callable[[Any], object], Any]) -> None:
        self.call_user(item[0], item[1])

    def listener_failed(self, exc: BaseException) -> None:
        self._listeners.emit("error", ErrorEvent(self._target, exc))

    def deliver(self, item: tuple[Any, tuple[Subscription, ...], bool]) -> None:
        """Hands a stream message to its handles (all of them for the stream's last one)."""
        data, subs, final = item
        for sub in subs:
            if final or sub.active:
                self.call_user(sub.listener, data)

    def _emit(self, item: tuple[str, Event]) -> None:
        self._listeners.emit(item[0], item[1])

    def _inbound(self, item: Inbound) -> None:
        data, raw, subs, final, entry = item
        if self._listeners.has("message"):
            self._listeners.emit("message", MessageEvent(self._target, data, raw))
        if subs:
            self.deliver((data, subs, final))
        if entry is not None and entry.callback is not None:
            self.call_user(entry.callback, data)

    def _expire(self) -> None:
        for entry in self._pending.expire(time.monotonic()):
            if entry.callback is not None:
                self.call_user(entry.callback, entry.result)

    def _loop(self) -> None:
        get, pending = self._queue.get, self._pending
        while True:
            deadline = pending.next_deadline()
            if deadline is None:
                item = get()
            else:
                try:
                    item = get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    self._expire()
                    continue
            if item is None:
                self.finished.set()
                return
            fn, arg = item
            try:
                fn(arg)
            except Exception:  # a bug of ours; user exceptions are caught closer to them
                logger.exception("internal error on the dispatch thread")
            if deadline is not None:
                self._expire()
