"""Subscription handles, the sharing of identical streams, and their routing.

One server stream (``Stream``) may feed several local ``Subscription`` handles: identical
subscribe payloads (same ``protocol.stream_key``) share it, because Deriv answers a
duplicate with ``AlreadySubscribed``. The stream is forgotten on the server when its last
handle is. Stream messages are routed by the ``req_id`` of the subscribe request, which
Deriv repeats on every update; after a reconnect the same ``Stream`` is re-subscribed under
a new ``req_id`` and gets a new server id.

The registry holds no I/O: the Connection sends, and tells the registry what happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from .protocol import stream_key, stream_type

__all__ = ["NEW_STREAM", "Stream", "Subscription", "SubscriptionRegistry"]

MessageListener = Callable[[dict[str, Any]], object]
NEW_STREAM: Any = object()  # see SubscriptionRegistry.join


class Stream:
    """One server stream and the local handles it feeds (internal)."""

    __slots__ = (
        "error",
        "first",
        "id",
        "key",
        "last_message",
        "req_id",
        "request",
        "subs",
        "type",
    )

    def __init__(self, key: str, request: dict[str, Any]) -> None:
        self.key = key
        self.request = request
        self.type = stream_type(request)
        self.id: str | None = None
        self.req_id: int | None = None
        self.subs: tuple[Subscription, ...] = ()
        self.last_message: dict[str, Any] | None = None
        self.first = threading.Event()  # set once the first reply (or failure) is known
        self.error: BaseException | None = None


class Subscription:
    """A local handle on a server stream, returned by ``Connection.subscribe``.

    Attributes:
        request: The subscribe payload, as the caller gave it.
        listener: Called with each message dict of the stream, on the dispatch thread.
    """

    __slots__ = ("_active", "_registry", "_stream", "listener", "request")

    def __init__(
        self,
        registry: SubscriptionRegistry,
        stream: Stream,
        request: dict[str, Any],
        listener: MessageListener,
    ) -> None:
        self._registry = registry
        self._stream = stream
        self.request = request
        self.listener = listener
        self._active = True

    @property
    def id(self) -> str | None:
        """The server's current ``subscription.id`` (it changes after a reconnect)."""
        return self._stream.id

    @property
    def active(self) -> bool:
        """False once forgotten, or once the stream ended on the server side."""
        return self._active

    def forget(self) -> None:
        """Stops this handle; forgets the server stream if no other handle shares it.

        Idempotent, non-blocking, safe from any thread and from inside a listener; no
        message reaches ``listener`` after it returns (unless it is already running).
        """
        self._registry.release(self)

    def __repr__(self) -> str:
        state = "active" if self._active else "ended"
        return f"<Subscription {self._stream.key} id={self.id!r} {state}>"


class SubscriptionRegistry:
    """The streams of one connection. ``on_forget(stream)`` is called (outside the lock)
    when the last handle of a stream that the server knows is released."""

    def __init__(self, on_forget: Callable[[Stream], None]) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, Stream] = {}
        # The reader thread reads this without the lock (dict.get is atomic in CPython).
        self.by_req: dict[int, Stream] = {}
        self._ended_req_ids: set[int] = set()
        self._on_forget = on_forget

    def join(self, request: dict[str, Any], listener: MessageListener) -> tuple[Subscription, Any]:
        """A new handle for ``request``: on the existing identical stream, or on a new one.

        Returns:
            ``(subscription, replay)``: ``replay`` is ``NEW_STREAM`` when the caller must
            send the subscribe request (after ``bind``); else the stream's latest message
            for the new handle (None while the first reply is still awaited: the new handle
            will receive it with the others).
        """
        key = stream_key(request)
        with self._lock:
            stream = self._by_key.get(key)
            replay: Any = NEW_STREAM
            if stream is None:
                stream = Stream(key, {k: v for k, v in request.items() if k != "req_id"})
                self._by_key[key] = stream
            else:
                replay = stream.last_message if stream.first.is_set() else None
            sub = Subscription(self, stream, request, listener)
            stream.subs = (*stream.subs, sub)
        return sub, replay

    def record(self, stream: Stream, message: dict[str, Any]) -> tuple[Subscription, ...]:
        """Notes ``message`` as the stream's latest; returns the handles to deliver it to.

        Under the lock, so that a handle joining now gets the message either from this
        delivery or as its replay, never both and never neither.
        """
        with self._lock:
            stream.last_message = message
            return stream.subs

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
            self.by_req[req_id] = stream
            return True

    def first_reply(self, stream: Stream, message: dict[str, Any], sub_id: str | None) -> None:
        """Records the stream's first reply (its server id)."""
        stream.id = sub_id
        stream.last_message = message
        stream.error = None
        stream.first.set()

    def fail(self, stream: Stream, error: BaseException) -> list[Subscription]:
        """Ends ``stream`` and all its handles with ``error``; returns the handles."""
        stream.error = error
        subs = self.end(stream)
        stream.first.set()
        return subs

    def end(self, stream: Stream) -> list[Subscription]:
        """Ends ``stream`` locally (no forget is sent); returns the handles it had."""
        with self._lock:
            return self._end_locked(stream)

    def _end_locked(self, stream: Stream) -> list[Subscription]:
        if self._by_key.get(stream.key) is stream:
            del self._by_key[stream.key]
        if stream.req_id is not None and self.by_req.get(stream.req_id) is stream:
            del self.by_req[stream.req_id]
            self._remember_ended(stream.req_id)
        subs, stream.subs = stream.subs, ()
        for sub in subs:
            sub._active = False
        return list(subs)

    def release(self, sub: Subscription) -> None:
        """Ends one handle; the stream too when it was the last (see ``on_forget``).

        One lock section: a ``join`` of the same key either shares the stream before it
        ends, or starts a new one after; it never attaches to a dying stream.
        """
        stream = sub._stream
        with self._lock:
            if not sub._active:
                return
            sub._active = False
            stream.subs = tuple(s for s in stream.subs if s is not sub)
            if stream.subs:
                return
            self._end_locked(stream)
        if stream.id is not None:
            self._on_forget(stream)

    def _remember_ended(self, req_id: int) -> None:
        # Called with the lock held. Bounded: only recent ends matter (messages in flight).
        if len(self._ended_req_ids) > 4096:
            self._ended_req_ids.clear()
        self._ended_req_ids.add(req_id)

    def was_ours(self, req_id: int) -> bool:
        """True when ``req_id`` belonged to a stream that has ended here."""
        return req_id in self._ended_req_ids

    def streams(self) -> list[Stream]:
        """Every live stream."""
        with self._lock:
            return list(self._by_key.values())

    def find(self, *, ids: Iterable[str] = (), types: Iterable[str] = ()) -> list[Stream]:
        """The live streams with one of these server ids or ``forget_all`` types."""
        id_set, type_set = set(ids), set(types)
        with self._lock:
            return [s for s in self._by_key.values() if s.id in id_set or s.type in type_set]

    def unbind_all(self) -> None:
        """Forgets every routing (the connection dropped; streams wait for re-subscribe)."""
        with self._lock:
            for req_id in self.by_req:
                self._remember_ended(req_id)
            self.by_req.clear()
            for stream in self._by_key.values():
                stream.req_id = None
