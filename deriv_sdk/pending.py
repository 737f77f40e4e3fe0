"""Requests waiting for their answer: the ``req_id`` counter, the table, and its waiters.

Each entry is resolved exactly once, with the response dict or an exception: by the
answer, by its timeout, or by ``fail_all`` when the connection drops or closes. Nothing
waits forever and nothing is dropped silently.

A blocking waiter sleeps on a per-request raw lock (cheaper than ``threading.Event``,
which wraps a Condition); the reader thread releases it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Container
from typing import Any

from .errors import RequestTimeoutError

__all__ = ["Pending", "PendingTable"]

Result = Any  # the response dict, or a BaseException
Callback = Callable[[Result], None]

_MAX_REQ_ID = 2**31 - 1


class Pending:
    """One request in flight.

    Attributes:
        req_id: Its ``req_id``.
        result: The response dict or exception, once resolved.
        callback: Called with the result (by the Connection, on the dispatch thread, or on
            the reader thread when ``inline``); None for a blocking waiter.
        deadline: ``time.monotonic()`` after which a callback entry expires, or None.
    """

    __slots__ = ("_done", "callback", "deadline", "inline", "req_id", "result")

    def __init__(
        self,
        req_id: int,
        callback: Callback | None = None,
        deadline: float | None = None,
        inline: bool = False,
    ) -> None:
        self.req_id = req_id
        self.callback = callback
        self.deadline = deadline
        self.inline = inline
        self.result: Result = None
        self._done = threading.Lock()
        self._done.acquire()

    def _resolve(self, result: Result) -> None:
        self.result = result
        self._done.release()

    def wait(self, timeout: float | None) -> bool:
        """Blocks until resolved (True) or ``timeout`` seconds pass (False)."""
        done = self._done
        limit = -1 if timeout is None else min(max(timeout, 0.0), threading.TIMEOUT_MAX)
        if done.acquire(timeout=limit):
            done.release()  # stays resolved for any later wait
            return True
        return False


class PendingTable:
    """The requests of one connection, keyed by ``req_id``; safe from any thread."""

    def __init__(self, reserved: Container[int] = ()) -> None:
        """Args:
        reserved: ids that are taken although not pending (live streams keep theirs).
        """
        self._reserved = reserved
        self._lock = threading.Lock()
        self._entries: dict[int, Pending] = {}
        self._ids = itertools.count(1)
        self._deadlines = 0  # how many entries carry a deadline

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, req_id: object) -> bool:
        return req_id in self._entries

    def add(
        self,
        req_id: int | None = None,
        callback: Callback | None = None,
        deadline: float | None = None,
        inline: bool = False,
    ) -> Pending:
        """Registers a request; a fresh ``req_id`` when None.

        Raises:
            ValueError: ``req_id`` is already pending, or is not a positive int.
        """
        with self._lock:
            if req_id is None:
                req_id = next(self._ids)
                while req_id in self._entries or req_id in self._reserved or req_id > _MAX_REQ_ID:
                    if req_id > _MAX_REQ_ID:
                        self._ids = itertools.count(1)
                    req_id = next(self._ids)
            elif isinstance(req_id, bool) or not isinstance(req_id, int) or req_id < 1:
                raise ValueError(f"req_id must be a positive int, not {req_id!r}")
            elif req_id in self._entries or req_id in self._reserved:
                raise ValueError(f"req_id {req_id} is already pending on this connection")
            entry = Pending(req_id, callback, deadline, inline)
            self._entries[req_id] = entry
            if deadline is not None:
                self._deadlines += 1
        return entry

    def _pop(self, req_id: int) -> Pending | None:
        entry = self._entries.pop(req_id, None)
        if entry is not None and entry.deadline is not None:
            self._deadlines -= 1
        return entry

    def resolve(self, req_id: int, result: Result) -> Pending | None:
        """Ends the entry with ``result``; returns it (None when nobody was waiting)."""
        with self._lock:
            entry = self._pop(req_id)
        if entry is not None:
            entry._resolve(result)
        return entry

    def discard(self, entry: Pending) -> bool:
        """Removes ``entry`` unresolved (its waiter gave up); False if already resolved."""
        with self._lock:
            if self._entries.get(entry.req_id) is not entry:
                return False
            self._pop(entry.req_id)
            return True

    def fail_all(self, exc_factory: Callable[[], BaseException]) -> list[Pending]:
        """Resolves every entry with a fresh exception; returns them."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            self._deadlines = 0
        for entry in entries:
            entry._resolve(exc_factory())
        return entries

    def next_deadline(self) -> float | None:
        """The earliest deadline of the callback entries, or None."""
        if not self._deadlines:
            return None
        with self._lock:
            deadlines = [e.deadline for e in self._entries.values() if e.deadline is not None]
        return min(deadlines) if deadlines else None

    def expire(self, now: float) -> list[Pending]:
        """Resolves the callback entries whose deadline has passed with RequestTimeoutError."""
        if not self._deadlines:
            return []
        with self._lock:
            due = [
                e for e in self._entries.values() if e.deadline is not None and e.deadline <= now
            ]
            for entry in due:
                self._pop(entry.req_id)
        for entry in due:
            entry._resolve(RequestTimeoutError(f"no answer to request {entry.req_id} in time"))
        return due
