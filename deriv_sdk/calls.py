"""Deriv's conversation on top of the request core: streams, ``forget``, ``authorize``.

``DerivCalls`` is mixed into ``Connection``; it uses only the core's request primitives
(``request``, ``_wait_open``, ``_send_internal``, ``_send_tracked``, ``_finish_request``), the
subscription registry and the dispatcher, which ``Connection`` provides.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .dispatch import Dispatcher
from .errors import APIError, ConnectionClosedError, InvalidStateError, RequestTimeoutError
from .events import ErrorEvent, Event
from .pending import Pending, PendingTable
from .protocol import call_name, stamp
from .subscriptions import (
    NEW_STREAM,
    MessageListener,
    Stream,
    Subscription,
    SubscriptionRegistry,
)

__all__ = ["DerivCalls"]

logger = logging.getLogger("deriv_sdk.connection")


class DerivCalls:
    """``subscribe``, ``forget``, ``forget_all`` and ``authorize`` (see ``Connection``)."""

    OPEN: int
    request_timeout: float
    _subs: SubscriptionRegistry
    _pending: PendingTable
    _dispatcher: Dispatcher
    _forgotten: set[str]
    _token: str | None

    if TYPE_CHECKING:  # provided by Connection

        @property
        def ready_state(self) -> int: ...

        def request(
            self, payload: Mapping[str, Any], timeout: float | None = None
        ) -> dict[str, Any]: ...

        def _wait_open(self, deadline: float) -> None: ...

        def _send_internal(self, message: dict[str, Any], internal: bool = False) -> None: ...

        def _send_tracked(
            self,
            payload: Mapping[str, Any],
            callback: Callable[[Any], None] | None,
            deadline: float | None,
            inline: bool = False,
            internal: bool = False,
        ) -> Pending: ...

        def _finish_request(
            self, entry: Pending, deadline: float, timeout: float, payload: Mapping[str, Any]
        ) -> dict[str, Any]: ...

        def _post_event(self, type: str, event: Event) -> None: ...

    def subscribe(
        self,
        payload: Mapping[str, Any],
        listener: MessageListener,
        timeout: float | None = None,
    ) -> Subscription:
        """Starts a stream (``subscribe: 1`` is added) and blocks until its first reply.

        ``listener(message)`` is then called, on the dispatch thread, with the first and
        every later message of the stream. Identical payloads share one server stream.

        Raises:
            APIError: The server refused (e.g. an unknown symbol); nothing stays registered.
            RequestTimeoutError, ConnectionClosedError, InvalidStateError: As ``request()``.
        """
        if not callable(listener):
            raise TypeError("listener must be callable")
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a mapping, not {type(payload).__name__}")
        timeout = self.request_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._wait_open(deadline)
        request = {**payload, "subscribe": 1}
        sub, replay = self._subs.join(request, listener)
        stream = sub._stream
        if replay is NEW_STREAM:
            try:
                entry = self._pending.add(request.get("req_id"))
            except ValueError:
                self._subs.end(stream)
                raise
            self._subs.bind(stream, entry.req_id)
            try:
                self._send_internal(stamp(stream.request, entry.req_id))
            except BaseException as exc:
                self._pending.discard(entry)
                self._subs.fail(stream, exc)
                raise
            try:
                self._finish_request(entry, deadline, timeout, request)
            except BaseException as exc:
                if stream.error is None:
                    self._subs.fail(stream, exc)
                raise
            return sub
        if not stream.first.wait(max(0.0, deadline - time.monotonic())):
            sub.forget()
            raise RequestTimeoutError(f"no first reply to {call_name(request)} within {timeout}s")
        if stream.error is not None:
            raise stream.error
        if replay is not None:
            self._dispatcher.post(self._dispatcher.deliver, (replay, (sub,), False))
        return sub

    def forget(self, subscription_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The ``forget`` call; ends the local Subscriptions of that stream first."""
        self._end_streams(self._subs.find(ids=[subscription_id]))
        self._forgotten.add(subscription_id)
        return self.request({"forget": subscription_id}, timeout)

    def forget_all(self, *stream_types: str, timeout: float | None = None) -> list[str]:
        """The ``forget_all`` call (e.g. ``"ticks"``, ``"candles"``, ``"proposal"``).

        Ends the local Subscriptions of those types first. Returns the ids forgotten.
        """
        if not stream_types or not all(isinstance(t, str) and t for t in stream_types):
            raise ValueError("forget_all() takes one or more stream type names")
        self._end_streams(self._subs.find(types=stream_types))
        value: str | list[str] = stream_types[0] if len(stream_types) == 1 else list(stream_types)
        response = self.request({"forget_all": value}, timeout)
        ids = [i for i in response.get("forget_all") or [] if isinstance(i, str)]
        self._forgotten.update(ids)
        self._end_streams(self._subs.find(ids=ids))
        return ids

    def authorize(self, token: str, timeout: float | None = None) -> dict[str, Any]:
        """The ``authorize`` call. On success the token is remembered, so that a reconnect
        re-authorizes before anything else. The token never appears in logs, ``repr()`` or
        exception text.

        Raises:
            APIError: e.g. ``InvalidToken``. Others as ``request()``.
        """
        if not isinstance(token, str) or not token:
            raise TypeError("token must be a non-empty str")
        try:
            response = self.request({"authorize": token}, timeout)
        except APIError as exc:
            raise exc.redacted(token) from None
        self._token = token
        return response

    def _restore_session(self) -> None:
        """After a reconnect (on the restore thread): authorize with the remembered token,
        then re-subscribe every live stream (same handles, new ids). A refusal fires
        ``error`` and the rest goes on; a drop raises ``ConnectionClosedError``."""
        timeout = self.request_timeout
        token = self._token
        if token is not None:
            deadline = time.monotonic() + timeout
            entry = self._send_tracked({"authorize": token}, None, None, internal=True)
            try:
                self._finish_request(entry, deadline, timeout, {"authorize": 1})
            except (APIError, RequestTimeoutError) as exc:
                # Re-subscribing goes on: streams that need no login still come back.
                error = exc.redacted(token) if isinstance(exc, APIError) else exc
                self._post_event("error", ErrorEvent(self, error))
        waits = []
        for stream in self._subs.streams():
            stream.first.clear()
            entry = self._pending.add()
            if not self._subs.bind(stream, entry.req_id):  # forgotten meanwhile
                self._pending.discard(entry)
                continue
            try:
                self._send_internal(stamp(stream.request, entry.req_id), internal=True)
            except BaseException:
                self._pending.discard(entry)  # (the next restore binds the stream anew)
                raise
            waits.append((stream, entry, time.monotonic() + timeout))
        for stream, entry, deadline in waits:
            try:
                self._finish_request(entry, deadline, timeout, stream.request)
            except (APIError, RequestTimeoutError) as exc:
                failure: BaseException = exc
                if isinstance(exc, RequestTimeoutError):
                    name = call_name(stream.request)
                    failure = RequestTimeoutError(f"re-subscribe of {name}: {exc}")
                self._subs.fail(stream, failure)
                self._post_event("error", ErrorEvent(self, failure))

    def _forget_id(self, sub_id: str | None) -> None:
        """Sends ``forget`` for a server stream nobody here holds any more (once per id)."""
        if sub_id is None or sub_id in self._forgotten or self.ready_state != self.OPEN:
            return
        if len(self._forgotten) > 4096:
            self._forgotten.clear()
        self._forgotten.add(sub_id)
        try:
            self._send_tracked({"forget": sub_id}, _log_forget, time.monotonic() + 30.0)
        except (ConnectionClosedError, InvalidStateError):
            pass  # the stream dies with the connection anyway

    def _end_streams(self, streams: list[Stream]) -> None:
        for stream in streams:
            if stream.id is not None:
                self._forgotten.add(stream.id)
            self._subs.end(stream)


def _log_forget(result: Any) -> None:
    if isinstance(result, BaseException):
        logger.debug("forget of an abandoned stream failed: %s", result)
