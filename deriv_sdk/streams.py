"""Deriv's streams on top of the request path: subscribe, forget, forget_all, restore.

``Streams`` owns no thread. ``subscribe`` and the ``forget`` calls run on the caller's
thread; ``restore`` runs on the restore thread after a reconnect and re-subscribes every
live stream on the new link (same ``Subscription`` objects, new server ids). A re-subscribe
that gets no answer in time, or is cut by another drop, leaves its Subscription active: the
next attempt tries again. Only a refusal (an error reply, routed by ``inbound.Router``) ends
it, with ``on_end`` and an ``error`` event.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .dispatch import Dispatcher
from .errors import APIError, ConnectionClosedError, InvalidStateError, RequestTimeoutError
from .lifecycle import Lifecycle
from .link import Link
from .outbound import Outbound, log_failed_forget
from .protocol import call_name
from .subscriptions import EndListener, MessageListener, Stream, Subscription, SubscriptionRegistry

__all__ = ["RestoreIncomplete", "Streams"]


class RestoreIncomplete(RequestTimeoutError):
    """Re-subscribes after a reconnect got no answer in time (the link is then dropped and
    the next attempt tries again; the Subscriptions stay active)."""


class Streams:
    """The streams of one connection.

    Args:
        registry: The subscription registry (its ``on_abandon`` must call ``abandon``).
        outbound: The request path.
        lifecycle: When requests may go out, and on which link.
        dispatcher: Runs ``on_end`` callbacks and replays.
    """

    def __init__(
        self,
        registry: SubscriptionRegistry,
        outbound: Outbound,
        lifecycle: Lifecycle,
        dispatcher: Dispatcher,
    ) -> None:
        self._registry = registry
        self._outbound = outbound
        self._lifecycle = lifecycle
        self._dispatcher = dispatcher

    # -- the user's calls ---------------------------------------------------------------------

    def subscribe(
        self,
        payload: Mapping[str, Any],
        listener: MessageListener,
        timeout: object = None,
        on_end: EndListener | None = None,
    ) -> Subscription:
        """``Connection.subscribe``: see there."""
        if not callable(listener):
            raise TypeError("listener must be callable")
        if on_end is not None and not callable(on_end):
            raise TypeError("on_end must be callable or None")
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a mapping, not {type(payload).__name__}")
        name = call_name(payload)
        seconds, deadline = self._outbound.deadline(timeout)
        link = self._lifecycle.wait_open(deadline)
        request = {**payload, "subscribe": 1}
        sub, new = self._registry.join(request, listener, on_end, self._replay)
        sub.request = payload  # (as the caller gave it; the stream keeps the request sent)
        stream = sub._stream
        if not new:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self._dispatcher.calling():
                answered = stream.first.wait(remaining)
            if not answered:
                sub.forget()
                raise RequestTimeoutError(f"no first reply to {name} within {seconds}s")
            if stream.error is not None:
                raise stream.error
            return sub
        try:
            entry, body = self._outbound.register(link, request)
        except BaseException as exc:
            self._registry.end(stream, exc)
            raise
        if not self._registry.bind(stream, entry.req_id):  # ended meanwhile (forget_all)
            self._outbound.pending.discard(entry, retire=False)
            raise InvalidStateError(f"the {name} stream was forgotten while it was starting")
        try:
            self._outbound.transmit(link, entry, body)
            self._outbound.result(self._outbound.wait(entry, deadline, request))
        except BaseException as exc:
            if stream.error is None:  # (a refusal was routed and ended it already)
                self._registry.end(stream, exc)
            raise
        return sub

    def _replay(self, sub: Subscription, seq: int, message: dict[str, Any]) -> None:
        """The latest message of a shared stream, for a handle that joins it (called under
        the registry lock; delivered once, in order: ``subscriptions``' docstring)."""
        self._dispatcher.post(self._run_replay, (sub, seq, message))

    def _run_replay(self, item: tuple[Subscription, int, dict[str, Any]]) -> None:
        self._dispatcher.deliver(item[0], item[1], item[2], False)

    def forget(
        self, subscription_id: str, timeout: object = None, fields: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """``Connection.forget``: ends the local Subscriptions of that stream first."""
        if not isinstance(subscription_id, str) or not subscription_id:
            raise TypeError("subscription_id must be a non-empty str")
        self._end(self._registry.find(ids=[subscription_id]))
        self._registry.mark_forgotten([subscription_id])
        try:
            return self._outbound.request({**(fields or {}), "forget": subscription_id}, timeout)
        except BaseException:
            # Not forgotten after all: a stray update of it may get its own forget sent.
            self._registry.unmark_forgotten([subscription_id])
            raise

    def forget_all(
        self,
        stream_types: tuple[str, ...],
        timeout: object = None,
        fields: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``Connection.forget_all``: ends the local Subscriptions of those types first, and
        those the server names; returns the whole response."""
        if not stream_types or not all(isinstance(t, str) and t for t in stream_types):
            raise ValueError("forget_all() takes one or more stream type names")
        local = self._registry.find(types=stream_types)
        known = [s.id for s in local if s.id is not None]
        self._end(local)
        self._registry.mark_forgotten(known)
        value: str | list[str] = stream_types[0] if len(stream_types) == 1 else list(stream_types)
        try:
            response = self._outbound.request({**(fields or {}), "forget_all": value}, timeout)
        except BaseException:
            self._registry.unmark_forgotten(known)
            raise
        ids = [i for i in response.get("forget_all") or [] if isinstance(i, str)]
        self._registry.mark_forgotten(ids)
        self._end(self._registry.find(ids=ids))
        return response

    def _end(self, streams: list[Stream]) -> None:
        for stream in streams:
            self.post_ended(self._registry.end(stream))

    def post_ended(self, subs: list[Subscription]) -> None:
        """Runs the ``on_end`` of ``subs`` on the dispatch thread (from any thread but the
        reader's, which puts them in its batch)."""
        for sub in subs:
            self._dispatcher.post(self._dispatcher.run_user, (sub.on_end, sub))

    def abandon(self, stream: Stream) -> None:
        """The last handle of ``stream`` was released: forget it on the server (never
        blocks: ``Subscription.forget`` is safe from inside a listener)."""
        link = self._lifecycle.open_link
        if link is not None and stream.id is not None:
            self._outbound.post(link, {"forget": stream.id}, log_failed_forget)

    # -- after a reconnect --------------------------------------------------------------------

    def restore(self, link: Link, deadline: float | None) -> None:
        """Re-subscribes every live stream on ``link`` (restore thread).

        Raises:
            RestoreIncomplete: Some got no answer by ``deadline`` (they stay active).
            ConnectionClosedError: ``link`` dropped meanwhile (they stay active).
        """
        waits = []
        for stream in self._registry.streams():
            if stream.request is None:  # a creating call whose creation is not known
                failure = ConnectionClosedError(
                    "the connection dropped before the first answer to the call that started "
                    "this stream (e.g. buy): it may have been executed, and is not sent again"
                )
                self.post_ended(self._registry.end(stream, failure))
                continue
            entry, body = self._outbound.register(link, stream.request)
            if not self._registry.bind(stream, entry.req_id):  # forgotten meanwhile
                self._outbound.pending.discard(entry, retire=False)
                continue
            self._outbound.transmit(link, entry, body)
            waits.append((stream, entry))
        late = []
        for stream, entry in waits:
            request = stream.request or {}
            try:
                self._outbound.result(self._outbound.wait(entry, deadline, request))
            except APIError:
                pass  # a refusal: the router ended the stream (on_end, error event)
            except RequestTimeoutError:
                late.append(call_name(request))
            except ConnectionClosedError:
                raise
        if late:
            raise RestoreIncomplete(f"no answer to the re-subscribe of {', '.join(late)} in time")
