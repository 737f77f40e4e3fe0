"""Subscription handles, the sharing of identical streams, and their routing tables.

One server stream (``Stream``) may feed several local ``Subscription`` handles: identical
subscribe payloads (same ``protocol.stream_key``) share it, because Deriv answers a
duplicate with ``AlreadySubscribed``. The stream is forgotten on the server when its last
handle is. Stream messages are routed by the ``req_id`` of the subscribe request, which
Deriv repeats on every update; after a reconnect the same ``Stream`` is re-subscribed under
a new ``req_id`` and gets a new server id.

The registry holds no I/O and calls no user code: callers send, tell it what happened, and
run the ``on_end`` callbacks it returns on the dispatch thread. One lock guards the tables;
the reader thread's routing look-up (``by_req.get``) is a single atomic dict read.

Stream updates are recorded without the lock, by the reader thread alone: each gets the next
``seq`` of its stream, and ``latest`` becomes ``(seq, message)`` (one atomic store) *before*
the reader reads ``subs``. A joining handle is added to ``subs`` *before* ``join`` reads
``latest`` for its replay. Whatever the interleaving, the new handle is then handed the
message being recorded, or a later one, by the replay or by the delivery or by both; the
dispatch thread delivers a message to a handle only if its ``seq`` is above the handle's last
(``Subscription._seq``), so it is never delivered twice, and never out of order.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import InvalidStateError
from .protocol import creates, follow_up, stream_key, stream_type

__all__ = ["MAX_REMEMBERED", "Stream", "Subscription", "SubscriptionRegistry"]

MessageListener = Callable[[dict[str, Any]], object]
EndListener = Callable[["Subscription"], object]
#: Replay(sub, seq, message): hands the stream's latest message to a joining handle (see the
#: module docstring); called with the registry's lock held.
Replay = Callable[["Subscription", int, dict[str, Any]], None]

#: How many ended stream ``req_id``s and forgotten server ids are remembered (for the
#: messages still in flight when a stream ends); the oldest go first.
MAX_REMEMBERED = 4096
_unique = itertools.count(1)


class Stream:
    """One server stream and the local handles it feeds (internal).

    Attributes:
        request: What a reconnect sends to restore the stream (for a creating call, e.g.
            ``buy``, the read-only call that follows what it created, once known; None when
            it cannot be followed).
        first: Set once the reply to the current subscribe request (or its failure) is known.
        answered: The same as a plain flag, for the reader's hot path (under the lock).
        started: True once the stream ever answered (a handle was handed to the user).
    """

    __slots__ = (
        "answered",
        "creates",
        "error",
        "first",
        "id",
        "key",
        "latest",
        "req_id",
        "request",
        "seq",
        "started",
        "subs",
        "type",
    )

    def __init__(self, key: str, request: dict[str, Any]) -> None:
        self.key = key
        self.request: dict[str, Any] | None = request
        self.creates = creates(request)
        self.type = stream_type(request)
        self.id: str | None = None
        self.req_id: int | None = None
        self.subs: tuple[Subscription, ...] = ()
        self.seq = 0  # messages recorded so far (written by the reader thread only)
        self.latest: tuple[int, dict[str, Any]] | None = None  # (seq, message) of the last
        self.first = threading.Event()
        self.answered = False
        self.started = False
        self.error: BaseException | None = None


class Subscription:
    """A local handle on a server stream, returned by ``Connection.subscribe``.

    Attributes:
        request: The subscribe payload, as the caller gave it.
        listener: Called with each message dict of the stream, on the dispatch thread.
        on_end: Called once with this handle, on the dispatch thread, when it ends for any
            reason other than its own ``forget()`` (or None).
        error: Why it ended: the exception, or None for a normal end (still None while active).
    """

    __slots__ = (
        "_active",
        "_forgotten",
        "_registry",
        "_seq",
        "_stream",
        "error",
        "listener",
        "on_end",
        "request",
    )

    def __init__(
        self,
        registry: SubscriptionRegistry,
        stream: Stream,
        request: dict[str, Any],
        listener: MessageListener,
        on_end: EndListener | None,
    ) -> None:
        self._registry = registry
        self._stream = stream
        self.request: Mapping[str, Any] = request
        self.listener = listener
        self.on_end = on_end
        self.error: BaseException | None = None
        self._active = True
        self._forgotten = False  # by its own forget(): not even a stream's last message
        self._seq = 0  # the seq of the last message delivered to it (dispatch thread)

    @property
    def id(self) -> str | None:
        """The server's current ``subscription.id`` (a new one after each reconnect)."""
        return self._stream.id

    @property
    def active(self) -> bool:
        """False once forgotten or ended."""
        return self._active

    def forget(self) -> None:
        """Stops this handle; forgets the server stream if no other handle shares it.

        Idempotent, non-blocking, safe from any thread and from inside a listener; no
        message reaches ``listener`` after it returns (unless it is already running), and
        ``on_end`` is not called.
        """
        self._registry.release(self)

    def __repr__(self) -> str:
        state = "active" if self._active else "ended"
        return f"<Subscription {self._stream.key} id={self.id!r} {state}>"


class _Recent:
    """A bounded set that forgets its oldest members (call with the registry lock held)."""

    def __init__(self) -> None:
        self._items: dict[Any, None] = {}

    def add(self, item: Any) -> None:
        self._items[item] = None
        if len(self._items) > MAX_REMEMBERED:
            del self._items[next(iter(self._items))]

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def discard(self, item: Any) -> None:
        self._items.pop(item, None)

    def __len__(self) -> int:
        return len(self._items)


class SubscriptionRegistry:
    """The streams of one connection.

    Args:
        on_abandon: Called (outside the lock) with a stream whose last handle was released
            while the server knows it: the owner sends ``forget`` for it (``Streams.abandon``,
            set once both exist).
    """

    def __init__(self, on_abandon: Callable[[Stream], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, Stream] = {}
        # The reader thread reads this without the lock (dict.get is atomic in CPython).
        self.by_req: dict[int, Stream] = {}
        self._ended_req_ids = _Recent()
        self._forgotten_ids = _Recent()
        self.on_abandon = on_abandon
        self._closed = False

    # -- handles ----------------------------------------------------------------------------

    def join(
        self,
        request: dict[str, Any],
        listener: MessageListener,
        on_end: EndListener | None,
        replay: Replay,
    ) -> tuple[Subscription, bool]:
        """A new handle for ``request``: on the existing identical stream, or on a new one.

        Returns:
            ``(subscription, new)``: when ``new``, the caller must ``bind`` and send the
            subscribe request. Else, if the stream has answered already, ``replay`` was
            called (under the lock) with its latest message for the new handle; if not, the
            handle gets the first reply with the others.

        Raises:
            InvalidStateError: The registry is closed (the connection has ended).
        """
        key = stream_key(request)
        if creates(request):  # never shared: two identical buys are two contracts
            key = f"{key}#{next(_unique)}"
        with self._lock:
            if self._closed:
                raise InvalidStateError("the connection is closed")
            stream = self._by_key.get(key)
            new = stream is None
            if stream is None:
                stream = Stream(key, {k: v for k, v in request.items() if k != "req_id"})
                self._by_key[key] = stream
            sub = Subscription(self, stream, request, listener, on_end)
            stream.subs = (*stream.subs, sub)  # before reading latest: see the docstring
            latest = stream.latest
            if not new and stream.answered and latest is not None:
                replay(sub, latest[0], latest[1])
        return sub, new

    def release(self, sub: Subscription) -> None:
        """Ends one handle (no ``on_end``); the stream too when it was the last.

        One lock section: a ``join`` of the same key either shares the stream before it
        ends, or starts a new one after; it never attaches to a dying stream.
        """
        stream = sub._stream
        with self._lock:
            if not sub._active:
                sub._forgotten = True
                return
            sub._active = False
            sub._forgotten = True
            stream.subs = tuple(s for s in stream.subs if s is not sub)
            if stream.subs:
                return
            self._end_locked(stream)
            abandoned = stream.id is not None
            if abandoned:
                self._forgotten_ids.add(stream.id)
        if abandoned and self.on_abandon is not None:
            self.on_abandon(stream)

    # -- routing ------------------------------------------------------------------------------

    def bind(self, stream: Stream, req_id: int) -> bool:
        """Routes messages carrying ``req_id`` to ``stream`` (before the request is sent).

        Returns False (and binds nothing) when the stream has ended meanwhile.
        """
        with self._lock:
            if self._by_key.get(stream.key) is not stream:
                return False
            if stream.req_id is not None:
                self.by_req.pop(stream.req_id, None)
            stream.req_id = req_id
            stream.answered = False
            stream.first.clear()
            self.by_req[req_id] = stream
            return True

    def record(
        self, stream: Stream, message: dict[str, Any], sub_id: str | None
    ) -> tuple[tuple[Subscription, ...], int]:
        """Notes a message of ``stream`` (reader thread); returns ``(handles, seq)``: the
        handles to deliver it to and its sequence number (see the module docstring).

        The first reply to a subscribe request also sets the stream's server id (under the
        lock: ``subscribe()`` waits for it). Updates of an answered stream need no lock: the
        reader's hot path does the same inline.
        """
        if not stream.answered:
            with self._lock:
                stream.id = sub_id
                stream.error = None
                followed = stream.creates and stream.request is not None
                if followed:
                    self._follow(stream, message)
                stream.started = stream.answered = True
                stream.first.set()
                if followed:
                    # (Its reply, e.g. ``buy``'s, is not what a joiner of the followed
                    # stream expects: no replay until the stream's first update.)
                    stream.seq += 1
                    return stream.subs, stream.seq
        seq = stream.seq + 1
        stream.seq = seq
        stream.latest = (seq, message)
        return stream.subs, seq

    def _follow(self, stream: Stream, reply: dict[str, Any]) -> None:
        """A creating call's first reply: from now on the stream is the read-only call that
        follows what it created (never sent again; see ``protocol.follow_up``), under that
        call's key, so that the same subscription made by the user shares it rather than
        clashing with it after a reconnect (call with the lock held)."""
        assert stream.request is not None
        stream.request = follow_up(stream.request, reply)
        stream.creates = False
        if stream.request is None:
            return
        key = stream_key(stream.request)
        if key not in self._by_key and self._by_key.get(stream.key) is stream:
            del self._by_key[stream.key]
            stream.key = key
            self._by_key[key] = stream

    def end(self, stream: Stream, error: BaseException | None = None) -> list[Subscription]:
        """Ends ``stream`` locally (no forget is sent) with ``error`` (None: a normal end).

        Returns:
            The handles whose ``on_end`` the caller must call, on the dispatch thread, after
            anything of the stream already queued: those of a stream that had started (a
            subscribe that fails at once raises instead). Their ``error`` is set.
        """
        with self._lock:
            stream.error = error
            subs = self._end_locked(stream)
            stream.first.set()  # (not answered: waiters find stream.error)
            if not stream.started:
                return []
            for sub in subs:
                sub.error = error
            return [s for s in subs if s.on_end is not None]

    def _end_locked(self, stream: Stream) -> list[Subscription]:
        if self._by_key.get(stream.key) is stream:
            del self._by_key[stream.key]
        if stream.req_id is not None and self.by_req.get(stream.req_id) is stream:
            del self.by_req[stream.req_id]
            self._ended_req_ids.add(stream.req_id)
        subs, stream.subs = stream.subs, ()
        for sub in subs:
            sub._active = False
        return list(subs)

    def was_ours(self, req_id: int) -> bool:
        """True when ``req_id`` belonged to a stream that has ended on this link (its
        updates may still be in flight: it stays taken, see ``reserved``)."""
        return req_id in self._ended_req_ids

    def reserved(self, req_id: object) -> bool:
        """Whether ``req_id`` is a live stream's or one that ended on this link (the pending
        table hands out neither: a late update must never reach a request)."""
        return req_id in self.by_req or req_id in self._ended_req_ids

    def reserved_ids(self) -> _Reserved:
        """A container view of ``reserved`` (``in``), for the pending table."""
        return _Reserved(self)

    def claim_forget(self, sub_id: str) -> bool:
        """True the first time for ``sub_id``: the caller then sends its ``forget``."""
        with self._lock:
            if sub_id in self._forgotten_ids:
                return False
            self._forgotten_ids.add(sub_id)
            return True

    def mark_forgotten(self, ids: Iterable[str]) -> None:
        """Remembers server ids forgotten by an explicit ``forget``/``forget_all`` (before it
        is sent: a stray update meanwhile must not send a second one)."""
        with self._lock:
            for sub_id in ids:
                self._forgotten_ids.add(sub_id)

    def unmark_forgotten(self, ids: Iterable[str]) -> None:
        """That ``forget`` failed: a stray update of those ids may send its own again."""
        with self._lock:
            for sub_id in ids:
                self._forgotten_ids.discard(sub_id)

    def unbind_all(self) -> None:
        """The link dropped: forgets every routing; live streams wait to be re-subscribed."""
        with self._lock:
            self._ended_req_ids = _Recent()  # nothing of the old link can come any more
            self.by_req.clear()
            for stream in self._by_key.values():
                stream.req_id = None
                stream.answered = False
                stream.first.clear()
                if stream.creates:
                    # Its first answer never came: it may have been executed, and it must
                    # never be sent again (that would buy again). The restore ends it.
                    stream.request = None

    def close(self, error: BaseException | None) -> list[Subscription]:
        """Ends every stream (the connection ended for good); nothing can join afterwards.

        Returns the handles whose ``on_end`` must run (as ``end``).
        """
        with self._lock:
            self._closed = True
            streams = list(self._by_key.values())
        out: list[Subscription] = []
        for stream in streams:
            out.extend(self.end(stream, error))
        return out

    # -- queries ------------------------------------------------------------------------------

    def streams(self) -> list[Stream]:
        """Every live stream."""
        with self._lock:
            return list(self._by_key.values())

    def find(self, *, ids: Iterable[str] = (), types: Iterable[str] = ()) -> list[Stream]:
        """The live streams with one of these server ids or ``forget_all`` types."""
        id_set, type_set = set(ids), set(types)
        with self._lock:
            return [s for s in self._by_key.values() if s.id in id_set or s.type in type_set]


class _Reserved:
    """The ``req_id``s the pending table must not hand out (see ``reserved``)."""

    __slots__ = ("_registry",)

    def __init__(self, registry: SubscriptionRegistry) -> None:
        self._registry = registry

    def __contains__(self, req_id: object) -> bool:
        return self._registry.reserved(req_id)
