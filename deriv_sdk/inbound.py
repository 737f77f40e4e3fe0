"""Routing of what the reader decoded: responses to their waiters, updates to their streams.

Runs on the reader thread and never runs user code. For each text message ``Router.route``
resolves the pending request (a blocking caller is woken right here, before anything else is
done for its message) or records the stream update, and adds to the read's ``Batch`` what the
dispatch thread must do with it: fire ``message``, call the stream's listeners, call a
``send_request`` callback, run ``on_end``. Correlation is on ``req_id`` only.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from .dispatch import Batch, Dispatcher
from .errors import APIError
from .events import ErrorEvent, ListenerRegistry, MessageEvent
from .link import Link
from .outbound import Outbound, log_failed_forget
from .pending import Pending
from .protocol import Kind, classify
from .subscriptions import Stream, Subscription, SubscriptionRegistry

__all__ = ["Router", "Session"]

logger = logging.getLogger("deriv_sdk.inbound")


class Session(Protocol):
    """What the router tells about the session (implemented by the connection's parts)."""

    def logged_out(self) -> None:
        """A ``logout`` call succeeded: forget the remembered token."""

    def refused(self, error: APIError) -> None:
        """Deriv refused the connection itself (``InvalidAppID``): retrying cannot help."""


class Router:
    """Routes the decoded messages of one connection (reader thread).

    Args:
        target: The Connection (the ``target`` of events).
        outbound: The request path (its pending table, ``APIError`` conversion, and the
            ``forget`` of abandoned streams).
        registry: The subscription registry.
        dispatcher: The dispatch thread (runs what ``route`` adds to a batch).
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

    def route(self, data: Any, raw: bytes, batch: Batch, link: Link) -> None:
        """One decoded message: route it, and add its dispatch work to ``batch``."""
        kind, req_id, sub_id = classify(data)  # the envelope rules: protocol.py, pure
        subs: tuple[Subscription, ...] = ()
        final = False
        entry: Pending | None = None
        stream: Stream | None = None
        if kind is Kind.ERROR:
            self._check_refusal(data)
        if req_id is not None:
            stream = self._by_req.get(req_id)
            if stream is not None:
                subs, final = self._stream_message(stream, data, kind, sub_id, batch)
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
            batch.items.append((self._run_message, (data, raw, subs, final, entry)))
            batch.messages += 1
        if final and stream is not None:
            self._ended(self._registry.end(stream), batch)

    def _check_refusal(self, data: dict[str, Any]) -> None:
        error = data.get("error")
        if isinstance(error, dict) and error.get("code") == "InvalidAppID":
            self._session.refused(self._outbound.api_error(data))

    def _stream_message(
        self, stream: Stream, data: dict[str, Any], kind: Kind, sub_id: str | None, batch: Batch
    ) -> tuple[tuple[Subscription, ...], bool]:
        """A message of one of our streams: ``(handles to deliver it to, is it the last)``."""
        if kind is Kind.ERROR:
            # A refusal: of the first subscribe (the subscriber raises it), of a re-subscribe
            # after a reconnect, or an error on a running stream. The stream ends.
            started = stream.started
            error = self._outbound.api_error(data)
            ended = self._registry.end(stream, error)
            if started:
                self.error(error, batch)
                self._ended(ended, batch)
            return (), False
        subs = self._registry.record(stream, data, sub_id)
        # No subscription id: the server ended the stream (e.g. a sold contract's last
        # update); it is delivered to every handle, then they end.
        return subs, sub_id is None

    def _ended(self, subs: list[Subscription], batch: Batch) -> None:
        run_user = self._dispatcher.run_user
        for sub in subs:
            batch.items.append((run_user, (sub.on_end, sub)))

    def _abandoned(self, sub_id: str, link: Link) -> None:
        """A stream nobody here holds any more still sends: forget it (once per id)."""
        if self._registry.claim_forget(sub_id):
            self._outbound.post(link, {"forget": sub_id}, log_failed_forget)

    def error(self, error: BaseException, batch: Batch) -> None:
        """Adds an ``error`` event to ``batch`` (nothing when nobody listens)."""
        if self._listeners.has("error"):
            event = ErrorEvent(self._target, error)
            batch.items.append((self._dispatcher.emit, ("error", event)))

    def _run_message(self, item: tuple[Any, bytes, tuple[Subscription, ...], bool, Any]) -> None:
        """On the dispatch thread: ``message`` listeners, then the stream's, then a callback."""
        data, raw, subs, final, entry = item
        listeners = self._listeners
        if listeners.has("message"):
            listeners.emit("message", MessageEvent(self._target, data, raw))
        if subs:
            call_user = self._dispatcher.call_user
            for sub in subs:
                if final or sub.active:
                    call_user(sub.listener, data)
        if entry is not None:
            self._dispatcher.run_entry(entry)
