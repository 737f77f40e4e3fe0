"""The connection's lifecycle: one phase enum, one lock, and the one retry decision.

``Phase`` is the only truth about where a connection is; ``ready_state`` (the browser's
four values) is derived from it. The phases the browser lacks are named: ``RESTORING`` (a
new link is up after a drop, and the session is being restored before anything of the user
goes out) and ``BACKOFF`` (waiting before the next attempt).

::

    NEW --connect()--> CONNECTING --link up--> OPEN --drop--> BACKOFF --> CONNECTING (again)
                           |                    ^                            |
                           |                    +------- RESTORING <--link up+
                           +--failed, no retry--> CLOSING --> CLOSED
    close() from any phase: --> CLOSING --> CLOSED

``RetryPolicy.allows`` is the single place that decides whether retrying can help; the
README's "which failures are retried" table is its docstring.
"""

from __future__ import annotations

import enum
import threading
import time
from typing import Any

from .backoff import Backoff
from .errors import (
    APIError,
    ConnectError,
    ConnectionClosedError,
    InvalidStateError,
    RequestTimeoutError,
    RestError,
)

__all__ = ["Lifecycle", "Phase", "RetryPolicy"]


class Phase(enum.Enum):
    """Where a connection is in its life."""

    NEW = "new"  # constructed; connect() not called yet
    CONNECTING = "connecting"  # an attempt is under way (the first, or after a drop)
    OPEN = "open"  # the link is up and the session restored: requests go out
    RESTORING = "restoring"  # a new link after a drop: re-authorize, re-subscribe first
    BACKOFF = "backoff"  # waiting before the next attempt
    CLOSING = "closing"  # close() was called, or the connection is ending for good
    CLOSED = "closed"  # ended; nothing more will happen


_READY_STATE = {
    Phase.NEW: 3,
    Phase.CONNECTING: 0,
    Phase.OPEN: 1,
    Phase.RESTORING: 0,
    Phase.BACKOFF: 0,
    Phase.CLOSING: 2,
    Phase.CLOSED: 3,
}


class Lifecycle:
    """The phase and what goes with it, under one Condition (``lock``), notified on every
    change. No user code, sleep or join ever runs under it.

    Attributes:
        lock: The Condition. Others may take it to act atomically with a phase change
            (e.g. ``send_request`` registers a request with the link it sees).
        stop: Set by ``close()``: ends attempts, backoff waits and the reader's pauses.
        link: The current link in RESTORING or OPEN (for the keepalive and close()).
        open_link: The link user requests go on: set only while OPEN.
    """

    def __init__(self) -> None:
        self.lock = threading.Condition(threading.Lock())
        self.stop = threading.Event()
        self.phase = Phase.NEW
        self.ever_opened = False
        self.user_closed = False
        self.close_args: tuple[int, str] = (1000, "")
        self.link: Any = None
        self.open_link: Any = None
        self.handshake: Any = None

    @property
    def ready_state(self) -> int:
        return _READY_STATE[self.phase]

    def begin(self) -> None:
        """NEW -> CONNECTING.

        Raises:
            InvalidStateError: Not NEW (connect() was called before, or close()).
        """
        with self.lock:
            if self.phase is not Phase.NEW:
                raise InvalidStateError("connect() can be called once per Connection")
            self._to(Phase.CONNECTING)

    def _to(self, phase: Phase) -> None:
        # Called with the lock held.
        self.phase = phase
        self.lock.notify_all()

    def set(self, phase: Phase) -> bool:
        """Moves to ``phase`` unless the connection is ending; True when it did."""
        with self.lock:
            if self.phase in (Phase.CLOSING, Phase.CLOSED):
                return False
            self._to(phase)
            return True

    def request_close(self, code: int, reason: str) -> tuple[bool, Any, Any, bool]:
        """close(): CLOSING (CLOSED when never started); returns ``(first, handshake, link,
        started)``: whether this is the first close(), and what must be aborted."""
        with self.lock:
            first = not self.user_closed
            self.user_closed = True
            self.stop.set()
            started = self.phase is not Phase.NEW
            if first:
                self.close_args = (code, reason)
                if self.phase is Phase.NEW:
                    self._to(Phase.CLOSED)
                elif self.phase is not Phase.CLOSED:
                    self._to(Phase.CLOSING)
            return first, self.handshake, self.link, started

    def attempt(self, handshake: Any) -> bool:
        """Registers the handshake of an attempt (for close()); False when stopping."""
        with self.lock:
            if self.stop.is_set():
                return False
            self.handshake = handshake
            self._to(Phase.CONNECTING)
            return True

    def link_up(self, link: Any) -> bool | None:
        """A link opened: OPEN (first time) or RESTORING (after a drop). Call with ``lock``
        held (to act atomically with it).

        Returns:
            True when this is a reconnect, False for the first open, None when stopping (the
            caller closes the link).
        """
        self.handshake = None
        if self.stop.is_set():
            return None
        self.link = link
        reconnected = self.ever_opened
        self.ever_opened = True
        if reconnected:
            self._to(Phase.RESTORING)
        else:
            self.open_link = link
            self._to(Phase.OPEN)
        return reconnected

    def restored(self, link: Any) -> bool:
        """RESTORING -> OPEN for ``link``; False when it is no longer the current link or
        the connection is ending. Call with ``lock`` held (to act atomically with it)."""
        if self.link is not link or self.phase is not Phase.RESTORING:
            return False
        self.open_link = link
        self._to(Phase.OPEN)
        return True

    def link_down(self, link: Any, will_retry: bool) -> None:
        """The link ended: BACKOFF (to retry) or CLOSING."""
        with self.lock:
            if self.link is link:
                self.link = None
            if self.open_link is link:
                self.open_link = None
            if self.phase is not Phase.CLOSED:
                self._to(Phase.BACKOFF if will_retry and not self.stop.is_set() else Phase.CLOSING)

    def finish(self) -> None:
        """CLOSED: the end."""
        with self.lock:
            self.link = self.open_link = self.handshake = None
            self._to(Phase.CLOSED)

    def wait_open(self, deadline: float | None) -> Any:
        """Blocks until OPEN; returns the open link.

        Raises:
            InvalidStateError: Before connect() or after close().
            ConnectionClosedError: The connection ended for good first.
            RequestTimeoutError: ``deadline`` (monotonic) passed first.
        """
        link = self.open_link
        if link is not None and self.phase is Phase.OPEN:
            return link
        with self.lock:
            while True:
                if self.phase is Phase.OPEN and self.open_link is not None:
                    return self.open_link
                if self.user_closed:
                    raise InvalidStateError("the connection was closed by close()")
                if self.phase is Phase.NEW:
                    raise InvalidStateError("the connection is not open: call connect() first")
                if self.phase in (Phase.CLOSING, Phase.CLOSED):
                    raise ConnectionClosedError("the connection is closed and will not reconnect")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise RequestTimeoutError("the connection did not open in time")
                self.lock.wait(None if remaining is None else min(remaining, threading.TIMEOUT_MAX))


class RetryPolicy:
    """Whether another attempt may follow a failure (the only place that decides it).

    Which failures are retried (with backoff):

    - network errors, timeouts, TLS errors, a drop of an open link, HTTP 5xx and 429 at the
      handshake or from the new API's REST: always;
    - a handshake answered 4xx (400, 401, 403, 404, ...) on a connection that has been OPEN
      before (a proxy or CDN incident must not end a bot that ran for weeks);

    and which end the connection (``error``, then ``close(will_reconnect=False)``):

    - a handshake answered 4xx on a connection that has never been OPEN (a wrong URL, app id
      or one-time password: retrying cannot help);
    - Deriv's ``InvalidAppID``;
    - a REST error of the new API that retrying cannot fix: any 4xx but 429 (a bad or
      revoked token, a missing scope, no such account);
    - a first connection that fails, unless ``connect(retry=True)``; any failure once
      ``reconnect=False`` or ``max_reconnect_attempts`` is reached.

    Args:
        reconnect: Reconnect after a drop.
        max_attempts: Most attempts in a row after a failure (None: no limit).
        backoff: The delays (its ``attempt`` counts the attempts in a row).
    """

    def __init__(self, reconnect: bool, max_attempts: int | None, backoff: Backoff) -> None:
        self.reconnect = reconnect
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.retry_first = False  # connect(retry=True)
        self.refusal: BaseException | None = None  # a failure that retrying cannot fix

    def refuse(self, error: BaseException) -> bool:
        """Records a refusal that ends the connection whatever comes (e.g. InvalidAppID);
        True when it is the first."""
        if self.refusal is None:
            self.refusal = error
            return True
        return False

    def allows(self, failure: BaseException | None, ever_opened: bool) -> bool:
        """True when another attempt may follow ``failure`` (None: the link dropped)."""
        if self.refusal is not None:
            return False
        if not (self.reconnect if ever_opened else self.retry_first):
            return False
        if self.max_attempts is not None and self.backoff.attempt >= self.max_attempts:
            return False
        if failure is not None and not retryable(failure, ever_opened):
            self.refusal = failure
            return False
        return True


def retryable(failure: BaseException, ever_opened: bool) -> bool:
    """Whether retrying can help after ``failure`` (see ``RetryPolicy``)."""
    cause = failure.__cause__ if isinstance(failure, ConnectError) else None
    if isinstance(failure, RestError) or isinstance(cause, RestError):
        rest = failure if isinstance(failure, RestError) else cause
        assert isinstance(rest, RestError)
        return rest.retryable
    if isinstance(failure, APIError):
        return failure.code != "InvalidAppID"
    status = getattr(failure, "status", None)
    if isinstance(status, int) and status < 500 and status != 429:
        return ever_opened  # 4xx (and a redirect): a refusal
    return True
