"""The one path for every request that goes on the wire, and its answer.

Every request — the user's ``request()`` and ``send_request()``, the keepalive's ping, the
restore's ``authorize`` and re-subscribes, ``subscribe()``, the reader's ``forget`` of an
abandoned stream — is registered in the pending table (``register``), stamped with its
``req_id``, encoded and framed (``transmit``), and its answer converted in one place
(``result``: an ``error`` reply becomes ``APIError``). ``transmit`` is also where a rate
limiter would plug in: the blocking senders may wait there, and the reader thread's
``post`` must never wait (a limiter would queue it instead).

Exactly one outcome per request: a registered request ends in its answer or in an
exception, never both. A request that could not be registered raises at once and is never
called back; one whose send failed is either discarded here (the caller gets the exception)
or was already failed by the drop of its link (the caller gets that), never both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .dispatch import Dispatcher
from .errors import APIError, ConnectionClosedError, InvalidStateError, RequestTimeoutError
from .frames import OP_TEXT
from .lifecycle import Lifecycle, Phase
from .link import Link
from .pending import Pending, PendingTable, check_timeout
from .protocol import call_name, dumps, stamp

__all__ = ["Outbound"]

logger = logging.getLogger("deriv_sdk.outbound")

Callback = Callable[[Any], object]
FORGET_TIMEOUT = 30.0


class Outbound:
    """The requests of one connection.

    Args:
        pending: The pending table.
        lifecycle: The lifecycle (when requests may go out, and on which link).
        dispatcher: Runs callbacks (and re-reads deadlines when one is added).
        request_timeout: The default timeout, in seconds (None: none).
        hints: Extra text for some ``APIError`` codes (e.g. ``InvalidAppID``).
    """

    def __init__(
        self,
        pending: PendingTable,
        lifecycle: Lifecycle,
        dispatcher: Dispatcher,
        request_timeout: float | None,
        hints: Mapping[str, str] | None = None,
    ) -> None:
        self.pending = pending
        self._lifecycle = lifecycle
        self._dispatcher = dispatcher
        self.request_timeout = request_timeout
        self._hints = dict(hints or {})

    # -- answers ----------------------------------------------------------------------------

    def api_error(self, response: dict[str, Any]) -> APIError:
        """The ``APIError`` of an error reply (the only place one is built)."""
        error = APIError.from_response(response)
        hint = self._hints.get(error.code)
        if hint:
            error.message = f"{error.message} {hint}".strip()
        return error

    def result(self, value: Any) -> dict[str, Any]:
        """A resolved entry's result as the caller sees it.

        Raises:
            APIError: For an error reply; the exception itself for a failure.
        """
        if isinstance(value, BaseException):
            raise value
        if "error" in value:
            raise self.api_error(value)
        response: dict[str, Any] = value
        return response

    def _as_callback_result(self, value: Any) -> Any:
        if isinstance(value, dict) and "error" in value:
            return self.api_error(value)
        return value

    # -- the path ---------------------------------------------------------------------------

    def deadline(self, timeout: object) -> tuple[float | None, float | None]:
        """``(seconds, deadline)`` for a ``timeout`` argument (None: the default)."""
        seconds = self.request_timeout if timeout is None else check_timeout(timeout)
        return seconds, None if seconds is None else time.monotonic() + seconds

    def register(
        self,
        link: Link | None,
        payload: Mapping[str, Any],
        callback: Callback | None = None,
        deadline: float | None = None,
        inline: bool = False,
    ) -> tuple[Pending, bytes]:
        """Registers a request and encodes it: ``(entry, body)``.

        Raises:
            TypeError: The payload is not a mapping, or cannot be encoded (nothing stays).
            ValueError: Its ``req_id`` is taken or invalid, or it names no call.
            InvalidStateError: The connection has ended.
        """
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a mapping, not {type(payload).__name__}")
        name = call_name(payload)  # ValueError for a payload that names no call
        entry = self.pending.add(payload.get("req_id"), callback, deadline, inline, link)
        try:
            body = dumps(stamp(payload, entry.req_id))
        except BaseException:
            self.pending.discard(entry, retire=False)
            raise
        if logger.isEnabledFor(logging.DEBUG):  # the call's name only: payloads hold secrets
            logger.debug("-> %s (req_id %d)", name, entry.req_id)
        return entry, body

    def transmit(self, link: Link, entry: Pending, body: bytes) -> None:
        """Puts a registered request on ``link`` (blocking; never on the reader thread).

        Raises:
            ConnectionClosedError: The link broke first; the entry is then discarded here,
                unless the drop failed it already (then its waiter gets that failure).
        """
        try:
            link.send_frame(OP_TEXT, body)
        except ConnectionClosedError:
            if self.pending.discard(entry):
                raise
            # The drop failed it first: that failure is its one outcome.

    def wait(self, entry: Pending, deadline: float | None, payload: Mapping[str, Any]) -> Any:
        """Waits for a blocking entry; returns its raw result (see ``result``).

        Raises:
            RequestTimeoutError: No answer by ``deadline`` (the entry is gone, its id
                retired until the link ends).
        """
        remaining = None if deadline is None else deadline - time.monotonic()
        with self._dispatcher.calling():  # (from a listener: the reader must read on)
            answered = entry.wait(remaining)
        if not answered:
            if self.pending.discard(entry):
                raise RequestTimeoutError(
                    f"no answer to {call_name(payload)} (req_id {entry.req_id}) in time"
                )
            entry.wait(None)  # resolved at the same moment: the result is there
        return entry.result

    # -- the user's requests -------------------------------------------------------------------

    def request(self, payload: Mapping[str, Any], timeout: object = None) -> dict[str, Any]:
        """``Connection.request``: see there."""
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a mapping, not {type(payload).__name__}")
        _, deadline = self.deadline(timeout)
        link = self._lifecycle.wait_open(deadline)
        entry, body = self.register(link, payload)
        try:
            self.transmit(link, entry, body)
        except ConnectionClosedError as exc:
            raise ConnectionClosedError(
                "the connection dropped before the request was sent", exc.code, exc.reason
            ) from exc
        return self.result(self.wait(entry, deadline, payload))

    def send_request(self, payload: Mapping[str, Any], callback: Callback) -> int:
        """``Connection.send_request``: see there."""
        if not callable(callback):
            raise TypeError("callback must be callable")
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a mapping, not {type(payload).__name__}")
        _, deadline = self.deadline(None)
        user = callback

        def deliver(value: Any) -> None:  # dispatch thread
            user(self._as_callback_result(value))

        lifecycle = self._lifecycle
        with lifecycle.lock:  # registered with the link it sees, atomically with OPEN
            if lifecycle.user_closed or lifecycle.phase is Phase.NEW:
                raise InvalidStateError(
                    "send_request() needs a connection that is open or connecting, not "
                    + ("closed by close()" if lifecycle.user_closed else "one never connected")
                )
            if lifecycle.phase in (Phase.CLOSING, Phase.CLOSED):  # as request(): it ended
                raise ConnectionClosedError("the connection is closed and will not reconnect")
            link = lifecycle.open_link if lifecycle.phase is Phase.OPEN else None
            entry, body = self.register(link, payload, deliver, deadline)
            if link is None:
                entry.body = body  # sent by adopt_waiting() once a link is open
        if link is not None:
            try:
                link.send_frame(OP_TEXT, body)
            except ConnectionClosedError:
                # The entry stays: the drop of its link (or the end of the connection, or its
                # deadline) resolves it and runs the callback, in order, exactly once.
                pass
        if deadline is not None:
            self._dispatcher.wake()  # the dispatch loop re-reads the earliest deadline
        return entry.req_id

    def adopt_waiting(self, link: Link) -> list[Pending]:
        """Binds the requests waiting for a link to ``link`` (call with the lifecycle lock
        held, at the change to OPEN); the caller then sends them with ``send_waiting``."""
        entries = self.pending.waiting()
        for entry in entries:
            entry.link = link
        return entries

    def send_waiting(self, link: Link, entries: list[Pending], blocking: bool) -> None:
        """Sends requests adopted by ``adopt_waiting``, in order (``blocking`` False on the
        reader thread)."""
        for entry in entries:
            body, entry.body = entry.body, b""
            if self.pending.entries.get(entry.req_id) is not entry:
                continue  # expired meanwhile ("was not sent"): it must not go out now
            if blocking:
                try:
                    link.send_frame(OP_TEXT, body)
                except ConnectionClosedError:
                    return  # the drop fails them (their link is set): one outcome each
            else:
                link.post(OP_TEXT, body)

    # -- the SDK's own requests ----------------------------------------------------------------

    def call(self, link: Link, payload: Mapping[str, Any], deadline: float | None) -> Any:
        """A blocking request on ``link`` itself (the restore, before the link is OPEN).
        Returns the converted result (raises ``APIError`` etc. as ``result``)."""
        entry, body = self.register(link, payload)
        self.transmit(link, entry, body)
        return self.result(self.wait(entry, deadline, payload))

    def ping(self, link: Link, on_answer: Callable[[], None] | None) -> bool:
        """The keepalive's ``{"ping": 1}`` on ``link`` (a timer thread); ``on_answer()`` runs
        on the reader thread when the answer arrives (None: nobody waits for it). False when
        nothing could be sent."""
        try:
            if on_answer is None:
                req_id = self.pending.new_id()  # retired at once: nothing can take its id
                link.send_frame(OP_TEXT, dumps({"ping": 1, "req_id": req_id}))
                return True

            def answered(result: Any) -> None:
                if isinstance(result, dict):
                    on_answer()

            entry, body = self.register(link, {"ping": 1}, answered, None, inline=True)
            self.transmit(link, entry, body)
        except (ConnectionClosedError, InvalidStateError):
            return False
        return True

    def post(self, link: Link, payload: Mapping[str, Any], callback: Callback) -> None:
        """A request from the reader thread (``forget`` of an abandoned stream): never
        blocks; ``callback`` runs on the dispatch thread with the answer or the failure."""
        try:
            _, body = self.register(link, payload, callback, time.monotonic() + FORGET_TIMEOUT)
        except (InvalidStateError, ValueError):
            return  # the connection is ending: the stream dies with it
        link.post(OP_TEXT, body)


def log_failed_forget(result: Any) -> None:
    """The callback of a ``forget`` the SDK sends itself (an abandoned stream)."""
    if isinstance(result, BaseException):
        logger.debug("forget of an abandoned stream failed: %s", result)
