"""Routing of what the reader decoded: responses to their waiters, updates to their streams.

Runs on the reader thread and never runs user code. ``Router.texts`` decodes and routes a
run of text frames; each message either resolves its pending request (a blocking caller is
woken right here, before anything else is done for its message) or is recorded as an update
of its stream, and what the dispatch thread must do with it goes into the read's ``Batch``:
fire ``message``, call the stream's listeners, call a ``send_request`` callback, run
``on_end``. Correlation is on ``req_id`` only.

The hot path: consecutive updates of one stream in one read become one ``StreamRun`` (two
list appends per message; one work item per run), and an update of an answered stream is
recorded without a lock (``subscriptions``' module docstring says why that is safe). Every
other message takes ``route``, by ``protocol.classify``'s rules.
"""

from __future__ import annotations

from typing import Any, Protocol

from .dispatch import Batch, Dispatcher
from .errors import APIError
from .events import ErrorEvent, ListenerRegistry, MessageEvent
from .frames import OP_CLOSE, encode_close_payload
from .link import CLOSE_FLUSH_TIMEOUT, Link
from .outbound import Outbound, log_failed_forget
from .pending import Pending
from .protocol import Kind, classify, loads
from .subscriptions import Stream, Subscription, SubscriptionRegistry

__all__ = ["BAD", "DONE", "FULL", "Router", "Session", "StreamRun"]


#: What ``Router.texts`` stopped at: a frame that is not text, the end (DONE); ``max_queue``
#: (FULL); a payload that is not JSON, left for the reader (BAD).
DONE, FULL, BAD = 0, 1, 2


class Session(Protocol):
    """What the router tells about the session (implemented by the connection's parts)."""

    def logged_out(self) -> None:
        """A ``logout`` call succeeded: forget the remembered token."""

    def refused(self, error: APIError) -> bool:
        """Deriv refused the connection itself (``InvalidAppID``): retrying cannot help.
        True the first time (the router then ends the connection)."""


class StreamRun:
    """Consecutive updates of one stream from one read, for the same handles: the messages
    (``datas``, ``raws``) and the ``seq`` of the first."""

    __slots__ = ("datas", "raws", "seq", "subs")

    def __init__(self, subs: tuple[Subscription, ...], seq: int) -> None:
        self.subs = subs
        self.seq = seq
        self.datas: list[dict[str, Any]] = []
        self.raws: list[bytes] = []


class Router:
    """Routes the decoded messages of one connection (reader thread).

    Args:
        target: The Connection (the ``target`` of events).
        outbound: The request path (its pending table, ``APIError`` conversion, and the
            ``forget`` of abandoned streams).
        registry: The subscription registry.
        dispatcher: The dispatch thread (runs what the router adds to a batch).
        listeners: The listener registry (is anyone listening to ``message``?).
        session: Told about logouts and refusals.
    """

    def __init__(
        self,
        target: Any,
        outbound: Outbound,
        registry: SubscriptionRegistry,
        dispatcher: Dispatcher,
        listeners: ListenerRegistry,
        session: Session,
    ) -> None:
        self._target = target
        self._outbound = outbound
        self._pending = outbound.pending
        self._registry = registry
        self._by_req = registry.by_req
        self._dispatcher = dispatcher
        self._listeners = listeners
        self._session = session
        # Bound once: a bound method is an allocation per use.
        self._run_stream_fn = self._run_stream
        self._run_message_fn = self._run_message

    def texts(
        self,
        frames: list[tuple[int, bytes]],
        start: int,
        batch: Batch,
        link: Link,
        room: int | None,
    ) -> tuple[int, int]:
        """Decodes and routes the text frames of ``frames`` from ``start`` on.

        Args:
            frames: What the frame parser returned for one read.
            start: The index of the first text frame to route.
            batch: The read's batch.
            link: The link being read (for the ``forget`` of abandoned streams).
            room: How many more messages the batch may take (None: no limit).

        Returns:
            ``(index, why)``: the index of the first frame not routed, and why it stopped
            (``DONE``: the end, or a frame that is not text; ``FULL``: ``room`` reached;
            ``BAD``: that frame is not JSON).
        """
        pending = self._pending.entries
        by_req = self._by_req
        items = batch.items
        count = batch.messages
        run: StreamRun | None = None
        work: Any = None
        n = len(frames)
        i = start
        why = DONE
        while i < n:
            opcode, payload = frames[i]
            if opcode != 1:  # OP_TEXT
                break
            try:
                data = loads(payload)
            except (ValueError, RecursionError):  # (json's decoder recurses on deep nesting)
                why = BAD
                break
            i += 1
            if type(data) is dict:
                req_id = data.get("req_id")
                if type(req_id) is int and req_id not in pending and "error" not in data:
                    stream = by_req.get(req_id)
                    sub = data.get("subscription")
                    if (
                        stream is not None
                        and stream.answered
                        and type(sub) is dict
                        and type(sub.get("id")) is str
                    ):
                        # An update of a running stream: recorded inline, without a lock.
                        seq = stream.seq + 1
                        stream.seq = seq
                        stream.latest = (seq, data)
                        subs = stream.subs
                        if (
                            run is None
                            or run.subs is not subs
                            or not items
                            or items[-1] is not work
                        ):
                            run = StreamRun(subs, seq)
                            work = (self._run_stream_fn, run)
                            items.append(work)
                            batch.urgent = True
                        run.datas.append(data)
                        run.raws.append(payload)
                        count += 1
                        if room is not None and count >= room:
                            why = FULL
                            break
                        continue
            batch.messages = count
            self.route(data, payload, batch, link)
            count = batch.messages
            if room is not None and count >= room:
                why = FULL
                break
        batch.messages = count
        return i, why

    def route(self, data: Any, raw: bytes, batch: Batch, link: Link) -> None:
        """One decoded message that is not an update of a running stream: route it, and add
        its dispatch work to ``batch``."""
        if type(data) is dict:
            req_id = data.get("req_id")
            if (
                type(req_id) is int
                and req_id in self._pending.entries
                and "error" not in data
                and "subscription" not in data
                and req_id not in self._by_req
            ):
                self._response(req_id, data, raw, batch)
                return
        kind, req_id, sub_id = classify(data)  # the envelope rules: protocol.py, pure
        subs: tuple[Subscription, ...] = ()
        seq = 0
        final = False
        entry: Pending | None = None
        stream: Stream | None = None
        if kind is Kind.ERROR:
            self._check_refusal(data, batch, link)
        if req_id is not None:
            stream = self._by_req.get(req_id)
            if stream is not None:
                subs, seq, final = self._stream_message(stream, data, kind, sub_id, batch)
            if req_id in self._pending:
                entry = self._pending.resolve(req_id, data)
                if entry is not None:
                    if entry.callback is None:
                        entry = None  # a blocking waiter: already woken
                    elif entry.inline:
                        entry.callback(data)  # internal (keepalive): must not wait for listeners
                        entry = None
                if kind is Kind.RESPONSE and data.get("msg_type") == "logout":
                    self._session.logged_out()
            elif stream is None:
                if kind is Kind.RESPONSE and data.get("msg_type") == "logout":
                    self._session.logged_out()  # a logout sent with send(): it counts too
                elif sub_id is not None and self._registry.was_ours(req_id):
                    self._abandoned(sub_id, link)
        if subs or entry is not None or self._listeners.has("message"):
            batch.items.append((self._run_message_fn, (data, raw, subs, seq, final, entry)))
            batch.messages += 1
            batch.urgent = True
        if final and stream is not None:
            self._ended(self._registry.end(stream), batch)

    def _response(self, req_id: int, data: dict[str, Any], raw: bytes, batch: Batch) -> None:
        """The answer to a pending request (not an error, not a stream's)."""
        entry = self._pending.resolve(req_id, data)
        if data.get("msg_type") == "logout":
            self._session.logged_out()
        wanted = self._listeners.has("message")
        if entry is not None:
            if entry.callback is None:  # a blocking waiter, woken right now
                entry = None
            elif entry.inline:
                entry.callback(data)  # internal (keepalive): must not wait for listeners
                entry = None
        if entry is not None or wanted:
            batch.items.append((self._run_message_fn, (data, raw, (), 0, False, entry)))
            batch.messages += 1
            if entry is not None:
                batch.urgent = True  # a send_request callback waits for it

    def _check_refusal(self, data: dict[str, Any], batch: Batch, link: Link) -> None:
        """Deriv's ``InvalidAppID`` ends the connection: retrying cannot help."""
        error = data.get("error")
        if isinstance(error, dict) and error.get("code") == "InvalidAppID":
            refusal = self._outbound.api_error(data)
            if self._session.refused(refusal):
                self.error(refusal, batch)
                # A close frame, then the socket. A sender holding the send lock sends the
                # frame after its own: wait for that (briefly) before the shutdown.
                link.post(OP_CLOSE, encode_close_payload(1000, "InvalidAppID"))
                link.flush(CLOSE_FLUSH_TIMEOUT)
                link.abort(f"refused by Deriv: {refusal.code}")

    def _stream_message(
        self, stream: Stream, data: dict[str, Any], kind: Kind, sub_id: str | None, batch: Batch
    ) -> tuple[tuple[Subscription, ...], int, bool]:
        """A message of one of our streams: ``(handles to deliver it to, its seq, is it the
        last)``."""
        if kind is Kind.ERROR:
            # A refusal: of the first subscribe (the subscriber raises it), of a re-subscribe
            # after a reconnect, or an error on a running stream. The stream ends.
            started = stream.started
            error = self._outbound.api_error(data)
            ended = self._registry.end(stream, error)
            if started:
                self.error(error, batch)
                self._ended(ended, batch)
            return (), 0, False
        subs, seq = self._registry.record(stream, data, sub_id)
        # No subscription id: the server ended the stream (e.g. a sold contract's last
        # update); it is delivered to every handle, then they end.
        return subs, seq, sub_id is None

    def _ended(self, subs: list[Subscription], batch: Batch) -> None:
        run_user = self._dispatcher.run_user
        for sub in subs:
            batch.items.append((run_user, (sub.on_end, sub)))
            batch.urgent = True

    def _abandoned(self, sub_id: str, link: Link) -> None:
        """A stream nobody here holds any more still sends: forget it (once per id)."""
        if self._registry.claim_forget(sub_id):
            self._outbound.post(link, {"forget": sub_id}, log_failed_forget)

    def error(self, error: BaseException, batch: Batch) -> None:
        """Adds an ``error`` event to ``batch`` (nothing when nobody listens)."""
        if self._listeners.has("error"):
            event = ErrorEvent(self._target, error)
            batch.items.append((self._dispatcher.emit, ("error", event)))
            batch.urgent = True

    # -- on the dispatch thread -------------------------------------------------------------

    def _run_stream(self, run: StreamRun) -> None:
        """A run of stream updates: ``message`` listeners, then the stream's, per message."""
        listeners = self._listeners
        subs = run.subs
        seq = run.seq
        if listeners.has("message"):
            target = self._target
            for data, raw in zip(run.datas, run.raws, strict=True):
                listeners.emit("message", MessageEvent(target, data, raw))
                for sub in subs:
                    self._dispatcher.deliver(sub, seq, data, False)
                seq += 1
            return
        if len(subs) == 1:
            (sub,) = subs
            failed = self._dispatcher.listener_failed
            for data in run.datas:
                # deliver(), inlined for the common case: one handle, no message listener.
                if sub._active and seq > sub._seq:
                    sub._seq = seq
                    try:
                        sub.listener(data)
                    except BaseException as exc:
                        failed(exc)
                seq += 1
            return
        for data in run.datas:
            for sub in subs:
                self._dispatcher.deliver(sub, seq, data, False)
            seq += 1

    def _run_message(
        self, item: tuple[Any, bytes, tuple[Subscription, ...], int, bool, Any]
    ) -> None:
        """One message: ``message`` listeners, then the stream's, then a callback."""
        data, raw, subs, seq, final, entry = item
        listeners = self._listeners
        if listeners.has("message"):
            listeners.emit("message", MessageEvent(self._target, data, raw))
        for sub in subs:
            self._dispatcher.deliver(sub, seq, data, final)
        if entry is not None:
            self._dispatcher.run_entry(entry)
