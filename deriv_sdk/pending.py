"""Requests waiting for their answer: the ``req_id`` counter, the table, and its waiters.

Each entry is resolved exactly once, with the response dict or an exception: by the
answer, by its timeout, or by ``fail_link`` / ``close`` when its link drops or the
connection ends. Nothing waits forever and nothing is dropped silently.

Three rules keep an answer from ever reaching the wrong caller:

- An id is never handed out while it is pending, reserved (a live stream keeps the
  ``req_id`` of its subscribe request, see ``SubscriptionRegistry.by_req``) or *retired*.
- An id whose request was abandoned (it timed out, or its waiter gave up) is retired until
  the link it was sent on ends: its late answer can still arrive on that link, and must not
  resolve a newer request that took the same id. A caller-chosen ``req_id`` that is retired
  raises ``ValueError`` like one that is pending.
- After ``close()`` nothing can be added, so an entry is either failed by ``close`` or was
  never registered (its caller got an exception instead): never both, never neither.

Callback entries (``send_request``) carry a deadline; the earliest is read from a heap in
O(1), so the dispatch thread scans nothing while no deadline is due.

A blocking waiter sleeps on a per-request raw lock (cheaper than ``threading.Event``,
which wraps a Condition); the reader thread releases it.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections.abc import Callable, Container
from typing import Any

from .errors import InvalidStateError, RequestTimeoutError

__all__ = ["MAX_RETIRED", "Pending", "PendingTable", "check_timeout"]

Result = Any  # the response dict, or a BaseException
Callback = Callable[[Result], object]

_MAX_REQ_ID = 2**31 - 1
#: Most retired ids kept per link; beyond it the oldest are forgotten (a link on which this
#: many requests went unanswered is in a bad way; the keepalive will likely drop it first).
MAX_RETIRED = 65_536


def check_timeout(value: object, name: str = "timeout") -> float | None:
    """A validated timeout in seconds: a positive number; ``inf`` means None (no limit).

    Raises:
        TypeError: Not a number.
        ValueError: NaN, zero or negative.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be > 0, not {value!r}")
    return None if math.isinf(seconds) else seconds


class Pending:
    """One request in flight.

    Attributes:
        req_id: Its ``req_id``.
        result: The response dict or exception, once resolved.
        callback: Called with the result (on the dispatch thread, or on the reader thread
            when ``inline``); None for a blocking waiter.
        deadline: ``time.monotonic()`` after which a callback entry expires, or None.
        link: The link it was sent on (None while it waits for an open link).
        body: The encoded request while it waits for an open link (else empty).
    """

    __slots__ = ("_done", "body", "callback", "deadline", "inline", "link", "req_id", "result")

    def __init__(
        self,
        req_id: int,
        callback: Callback | None = None,
        deadline: float | None = None,
        inline: bool = False,
        link: object = None,
    ) -> None:
        self.req_id = req_id
        self.callback = callback
        self.deadline = deadline
        self.inline = inline
        self.link = link
        self.body = b""
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
    """The requests of one connection, keyed by ``req_id``; safe from any thread.

    Args:
        reserved: Ids that are taken although not pending (live streams keep theirs). Read
            under this table's lock, but owned by the subscription registry: a stream binds
            its id there before its request is sent, so the two never hand out one id twice.
    """

    def __init__(self, reserved: Container[int] = ()) -> None:
        self._reserved = reserved
        self._lock = threading.Lock()
        # req_id -> entry; read (never written) by the reader's hot path without the lock.
        self.entries: dict[int, Pending] = {}
        self._retired: dict[int, None] = {}  # insertion-ordered: the oldest go first
        self._ids = itertools.count(1)
        self._heap: list[tuple[float, int, Pending]] = []  # (deadline, seq, entry)
        self._seq = itertools.count()
        self._closed = False

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, req_id: object) -> bool:
        return req_id in self.entries

    def _taken(self, req_id: int) -> bool:
        return req_id in self.entries or req_id in self._reserved or req_id in self._retired

    def add(
        self,
        req_id: int | None = None,
        callback: Callback | None = None,
        deadline: float | None = None,
        inline: bool = False,
        link: object = None,
    ) -> Pending:
        """Registers a request; a fresh ``req_id`` when None.

        Raises:
            ValueError: ``req_id`` is taken (pending, a live stream's, or retired), or is
                not a positive int.
            InvalidStateError: The table is closed (the connection has ended).
        """
        with self._lock:
            if self._closed:
                raise InvalidStateError("the connection is closed")
            if req_id is None:
                req_id = next(self._ids)
                while req_id > _MAX_REQ_ID or self._taken(req_id):
                    if req_id > _MAX_REQ_ID:
                        self._ids = itertools.count(1)
                    req_id = next(self._ids)
            elif isinstance(req_id, bool) or not isinstance(req_id, int) or req_id < 1:
                raise ValueError(f"req_id must be a positive int, not {req_id!r}")
            elif req_id > _MAX_REQ_ID:
                raise ValueError(f"req_id must be at most {_MAX_REQ_ID}, not {req_id}")
            elif self._taken(req_id):
                raise ValueError(
                    f"req_id {req_id} is in use on this connection (pending, a live stream's,"
                    " or an unanswered request's whose answer may still arrive)"
                )
            entry = Pending(req_id, callback, deadline, inline, link)
            self.entries[req_id] = entry
            if deadline is not None:
                heapq.heappush(self._heap, (deadline, next(self._seq), entry))
        return entry

    def new_id(self) -> int:
        """A fresh id that is retired at once: for a message whose answer nobody awaits
        (a keepalive ping with no timeout), so that no request can take its id."""
        with self._lock:
            req_id = next(self._ids)
            while req_id > _MAX_REQ_ID or self._taken(req_id):
                if req_id > _MAX_REQ_ID:
                    self._ids = itertools.count(1)
                req_id = next(self._ids)
            self._retire_locked(req_id)
        return req_id

    def resolve(self, req_id: int, result: Result) -> Pending | None:
        """Ends the entry with ``result``; returns it (None when nobody was waiting)."""
        with self._lock:
            entry = self.entries.pop(req_id, None)
        if entry is not None:
            entry._resolve(result)
        return entry

    def discard(self, entry: Pending, retire: bool = True) -> bool:
        """Removes ``entry`` unresolved (its waiter gave up); False if already resolved.

        Args:
            retire: Keep its id from reuse until its link ends (its answer may still come).
                False only for a request known not to have reached the wire.
        """
        with self._lock:
            if self.entries.get(entry.req_id) is not entry:
                return False
            del self.entries[entry.req_id]
            if retire and entry.link is not None:
                self._retire_locked(entry.req_id)
            return True

    def _retire_locked(self, req_id: int) -> None:
        retired = self._retired
        retired[req_id] = None
        if len(retired) > MAX_RETIRED:
            del retired[next(iter(retired))]

    def retired(self, req_id: int) -> bool:
        """True while ``req_id`` is retired (see the module docstring)."""
        return req_id in self._retired

    def fail_link(self, link: object, exc_factory: Callable[[], BaseException]) -> list[Pending]:
        """Resolves every entry sent on ``link`` with a fresh exception (the link ended);
        its retired ids are free again. Entries still waiting for a link stay."""
        with self._lock:
            gone = [e for e in self.entries.values() if e.link is link and link is not None]
            for entry in gone:
                del self.entries[entry.req_id]
            self._retired.clear()
        for entry in gone:
            entry._resolve(exc_factory())
        return gone

    def waiting(self) -> list[Pending]:
        """The entries that wait for an open link (``link`` None), oldest first."""
        with self._lock:
            return [e for e in self.entries.values() if e.link is None]

    def close(self, exc_factory: Callable[[], BaseException]) -> list[Pending]:
        """Resolves every entry with a fresh exception; nothing can be added afterwards."""
        with self._lock:
            self._closed = True
            entries = list(self.entries.values())
            self.entries.clear()
            self._retired.clear()
            self._heap.clear()
        for entry in entries:
            entry._resolve(exc_factory())
        return entries

    @property
    def closed(self) -> bool:
        return self._closed

    def next_deadline(self) -> float | None:
        """The earliest deadline of the callback entries still pending, or None."""
        heap = self._heap
        if not heap:
            return None
        with self._lock:
            entries = self.entries
            while heap and entries.get(heap[0][2].req_id) is not heap[0][2]:
                heapq.heappop(heap)  # resolved or discarded since: drop it lazily
            return heap[0][0] if heap else None

    def expire(self, now: float) -> list[Pending]:
        """Resolves the callback entries whose deadline has passed with RequestTimeoutError;
        their ids are retired (an answer may still come)."""
        heap = self._heap
        if not heap or heap[0][0] > now:
            return []
        due: list[Pending] = []
        with self._lock:
            while heap and heap[0][0] <= now:
                entry = heapq.heappop(heap)[2]
                if self.entries.get(entry.req_id) is entry:
                    del self.entries[entry.req_id]
                    if entry.link is not None:
                        self._retire_locked(entry.req_id)
                    due.append(entry)
        for entry in due:
            sent = "got no answer" if entry.link is not None else "was not sent: no open link"
            entry._resolve(RequestTimeoutError(f"request {entry.req_id} {sent} in time"))
        return due
