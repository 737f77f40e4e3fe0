"""One client connection: its outbound queue and writer thread, its streams, its login.

Threads: every :class:`Session` owns one daemon writer thread
(``deriv_sdk-server-send-N``) that sends the queued messages in order. Nothing else sends on
the socket, so the tick scheduler and the request handler only append to a queue and never
block on a slow client; a client that reads nothing has its queue capped at
:data:`MAX_QUEUE` messages (newer stream messages are dropped, with a warning).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from deriv_sdk.testing.accounts import Account
from deriv_sdk.testing.envelope import new_id
from deriv_sdk.testing.pats import OptionsAccount
from deriv_sdk.testing.validation import LEGACY, OPTIONS

logger = logging.getLogger("deriv_sdk.testing")

#: Most messages waiting in one connection's outbound queue.
MAX_QUEUE = 10_000


@dataclass
class Stream:
    """One subscription of one connection.

    Attributes:
        id: the subscription id (32 hex characters).
        kind: the ``forget_all`` stream type (``ticks``, ``candles``, ``proposal``, ...).
        call: the call that started it (its envelope's ``echo_req`` is that request).
        request: the request as received.
        key: identity of the stream for ``AlreadySubscribed`` (request without envelope).
        msg_type: ``msg_type`` of its messages.
        symbol: the underlying whose ticks drive it, if any.
        data: per-kind state (candle, proposal quote, contract id).
    """

    id: str
    kind: str
    call: str
    request: dict[str, Any]
    key: str
    msg_type: str
    symbol: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def stream_key(call: str, request: dict[str, Any]) -> str:
    """The identity of a subscription: the request without ``req_id``/``passthrough``."""
    rest = {k: v for k, v in request.items() if k not in ("req_id", "passthrough", "subscribe")}
    return call + ":" + json.dumps(rest, sort_keys=True)


class Session:
    """State and outbound queue of one connection.

    Args:
        conn: the websockets connection.
        number: a per-server connection number, used in thread names.
        app_id_ok: False when the handshake URL had no numeric ``app_id``.
        is_stalled: returns True while the server is stalled (nothing is sent).
        delay: returns the current answer delay in seconds.
        api: ``"legacy"`` (v3) or ``"options"`` (the new API): the shapes of its messages.
        account: the account the connection starts with (the new API's OTP account).
    """

    def __init__(
        self,
        conn: ServerConnection,
        number: int,
        app_id_ok: bool,
        is_stalled: Callable[[], bool],
        delay: Callable[[], float],
        api: str = LEGACY,
        account: Account | OptionsAccount | None = None,
    ) -> None:
        self.conn = conn
        self.number = number
        self.app_id_ok = app_id_ok
        self.api = api
        self.account: Account | OptionsAccount | None = account
        self.streams: dict[str, Stream] = {}
        self.stream_keys: dict[str, str] = {}
        self.calls: dict[str, deque[float]] = {}
        self._is_stalled = is_stalled
        self._delay = delay
        self._cond = threading.Condition()
        # (due time, text to send, or (code, reason) of a close queued behind the texts)
        self._queue: deque[tuple[float, str | tuple[int, str]]] = deque()
        self._close_request: tuple[int, str] | None = None
        self._done = False
        self._dropped = 0
        self.writer = threading.Thread(
            target=self._write_loop, name=f"deriv_sdk-server-send-{number}", daemon=True
        )

    def new_id(self) -> str:
        """A fresh stream or proposal id in this API's shape (the new API's are UUIDs with
        dashes, as in its docs; v3's are 32 hex characters)."""
        return new_id(dashed=self.api == OPTIONS)

    # -- streams (called under the server's state lock) ------------------------------

    def add_stream(self, stream: Stream) -> None:
        """Register ``stream``."""
        self.streams[stream.id] = stream
        self.stream_keys[stream.key] = stream.id

    def remove_stream(self, stream_id: str) -> Stream | None:
        """Unregister a stream; returns it, or None when there was none with that id."""
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            self.stream_keys.pop(stream.key, None)
        return stream

    def rate_ok(self, call: str, per_minute: int) -> bool:
        """Count a request of ``call``; False when it exceeds ``per_minute`` in the last 60 s."""
        now = time.monotonic()
        times = self.calls.setdefault(call, deque())
        while times and times[0] <= now - 60.0:
            times.popleft()
        if len(times) >= per_minute:
            return False
        times.append(now)
        return True

    # -- sending (any thread) ----------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message`` (JSON-encoded here) to be sent after the current delay."""
        self.send_text(json.dumps(message, separators=(",", ":")))

    def send_text(self, text: str) -> None:
        """Queue one text frame, as is."""
        due = time.monotonic() + self._delay()
        with self._cond:
            if self._done:
                return
            if len(self._queue) >= MAX_QUEUE:
                self._dropped += 1
                if self._dropped == 1:
                    logger.warning("connection %d reads too slowly; dropping messages", self.number)
                return
            self._queue.append((due, text))
            self._cond.notify()

    def request_close(self, code: int, reason: str, after_queued: bool = False) -> None:
        """Make the writer close the connection with ``code``/``reason`` (returns at once).

        Args:
            code: the close code.
            reason: the close reason.
            after_queued: False closes before anything still queued (a fault, or stop());
                True closes after the messages queued so far have been sent.
        """
        with self._cond:
            if after_queued:
                self._queue.append((time.monotonic() + self._delay(), (code, reason)))
            elif self._close_request is None:
                self._close_request = (code, reason)
            self._cond.notify()

    def wake(self) -> None:
        """Wake the writer (after ``resume()``)."""
        with self._cond:
            self._cond.notify()

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or gone: nothing more will be sent on it."""
        return self._done or self._close_request is not None

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` was called: the connection is gone (or dropped)."""
        return self._done

    def finish(self) -> None:
        """Stop the writer: the connection is gone."""
        with self._cond:
            self._done = True
            self._queue.clear()
            self._cond.notify()

    def _next(self) -> str | tuple[int, str] | None:
        """Wait for the next thing to do: a text to send, a close to make, or None to stop."""
        with self._cond:
            while True:
                if self._done:
                    return None
                if self._close_request is not None:
                    return self._close_request
                if self._queue and not self._is_stalled():
                    wait = self._queue[0][0] - time.monotonic()
                    if wait <= 0:
                        return self._queue.popleft()[1]
                    self._cond.wait(wait)
                else:
                    # Stalled or idle: resume(), send() and finish() all notify.
                    self._cond.wait(1.0)

    def _write_loop(self) -> None:
        try:
            while True:
                job = self._next()
                if job is None:
                    return
                if isinstance(job, tuple):
                    self.conn.close(*job)
                    return
                self.conn.send(job)
        except (ConnectionClosed, OSError):
            pass  # the connection is gone; the handler thread cleans up
        except Exception:  # pragma: no cover - a bug: log it, never kill the process
            logger.exception("writer of connection %d failed", self.number)
        finally:
            with self._cond:
                self._done = True
                self._queue.clear()
