"""``Connection``: the browser-shaped Deriv WebSocket client, on background threads.

Threads (all daemon, so a forgotten connection never keeps the interpreter alive; ``close()``
joins them all the same):

- ``deriv_sdk-io-N`` connects, reads the socket, resolves pending requests and routes stream
  messages, and reconnects. It never runs user code, so a slow listener cannot stop it
  reading or answering pings.
- ``deriv_sdk-dispatch-N`` runs every listener and callback, one at a time, in arrival order;
  it starts on first use, so a connection with nothing to call back has no such thread.
- ``deriv_sdk-keepalive-N`` (a ``threading.Timer``) sends the keepalive ping.
- ``deriv_sdk-restore-N`` (only just after a reconnect) re-authorizes and re-subscribes,
  then fires ``open``; it is not the dispatch thread, so a listener that makes a request
  while the link is being restored does not block the restore.

``self._lock`` guards the state fields; no user code, sleep or join ever runs under it.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from .backoff import Backoff
from .calls import DerivCalls
from .dispatch import Dispatcher
from .errors import (
    APIError,
    ConnectError,
    ConnectionClosedError,
    InvalidStateError,
    RequestTimeoutError,
)
from .events import (
    CloseEvent,
    ErrorEvent,
    Event,
    ListenerRegistry,
    OpenEvent,
    check_type,
)
from .frames import (
    OP_TEXT,
)
from .inbound import Inbound
from .keepalive import Keepalive
from .pending import Pending, PendingTable
from .protocol import call_name, dumps, encode_send, stamp
from .subscriptions import (
    SubscriptionRegistry,
)
from .transport import Handshake, Link

__all__ = ["Connection"]

logger = logging.getLogger("deriv_sdk.connection")

F = TypeVar("F", bound=Callable[..., Any])
_ids = itertools.count(1)
_STATE_NAMES = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")
CLOSE_HANDSHAKE_TIMEOUT = 1.0  # how long close() waits for the server to echo the close frame
JOIN_TIMEOUT = 5.0
_FATAL_STATUSES = frozenset({400, 401, 403, 404, 405, 410})


def _check_close(code: int, reason: str) -> None:
    if not isinstance(reason, str):
        raise TypeError(f"close reason must be a str, not {type(reason).__name__}")
    if isinstance(code, bool) or not isinstance(code, int):
        raise ValueError(f"close code must be an int, not {code!r}")
    if code != 1000 and not 3000 <= code <= 4999:
        raise ValueError(f"close code must be 1000 or in 3000-4999, not {code}")
    if len(reason.encode("utf-8")) > 123:
        raise ValueError("close reason must be at most 123 UTF-8 bytes")


class Connection(DerivCalls):
    """One WebSocket connection to Deriv's v3 API, shaped like the browser's ``WebSocket``.

    Nothing touches the network until ``connect()``. See API.md for the whole contract; the
    arguments are described in the README. Listeners run on the dispatch thread.
    """

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3

    def __init__(
        self,
        app_id: int | str | None = None,
        *,
        endpoint: str = "ws.derivws.com",
        url: str | None = None,
        language: str = "EN",
        brand: str = "deriv",
        keepalive_interval: float | None = 30.0,
        keepalive_timeout: float | None = 10.0,
        request_timeout: float = 30.0,
        reconnect: bool = True,
        reconnect_delay: float = 1.0,
        reconnect_max_delay: float = 30.0,
        max_reconnect_attempts: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if url is not None:
            if not url.startswith(("ws://", "wss://")):
                raise ValueError(f"url must start with ws:// or wss://, not {url.split(':')[0]}")
            self.url = url
        else:
            if app_id is None:
                app_id = os.environ.get("DERIV_APP_ID") or 1089
            if not str(app_id).isdigit():
                raise ValueError(f"app_id must be numeric, not {app_id!r}")
            self.url = (
                f"wss://{endpoint}/websockets/v3?app_id={app_id}"
                f"&l={language.upper()}&brand={brand.lower()}"
            )
        if request_timeout is None or request_timeout <= 0:
            raise ValueError("request_timeout must be > 0")
        if max_reconnect_attempts is not None and max_reconnect_attempts < 0:
            raise ValueError("max_reconnect_attempts must be >= 0 or None")
        self.request_timeout = float(request_timeout)
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self._ssl_context = ssl_context
        self._headers = dict(headers or {})
        self._n = next(_ids)
        self._backoff = Backoff(reconnect_delay, reconnect_max_delay)
        self._keepalive = (
            None
            if keepalive_interval is None
            else Keepalive(
                keepalive_interval,
                keepalive_timeout,
                self._send_ping,
                self._link_dead,
                name=f"deriv_sdk-keepalive-{self._n}",
            )
        )

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # notified on every state change
        self._state = Connection.CLOSED
        self._started = False
        self._user_closed = False
        self._close_args = (1000, "")
        self._fatal = False  # retrying cannot help (HTTP 4xx; InvalidAppID: see Inbound)
        self._ever_opened = False
        self._generation = 0
        self._link: Link | None = None
        self._handshake: Handshake | None = None
        self._drop_reason = ""
        self._last_connect_error: ConnectError | None = None
        self._final_close_sent = False
        self._token: str | None = None
        self._stop = threading.Event()  # set by close(): ends reconnecting and backoff waits
        self._terminal = False  # the connection has ended for good (under _cond)
        self._gate = threading.Event()  # lets the io thread read once "open" is queued
        self._io_done = threading.Event()  # set when the io thread is done
        self._io_done.set()
        self._forgotten: set[str] = set()

        self._listeners = ListenerRegistry(lambda exc: self._dispatcher.listener_failed(exc))
        self._subs = SubscriptionRegistry(lambda stream: self._forget_id(stream.id))
        # A live stream keeps its req_id: no request may take it.
        self._pending = PendingTable(reserved=self._subs.by_req)
        self._dispatcher = Dispatcher(
            self, self._listeners, self._pending, name=f"deriv_sdk-dispatch-{self._n}"
        )
        self._inbound = Inbound(
            self,
            self._pending,
            self._subs,
            self._dispatcher,
            self._forget_id,
            lambda: self._user_closed,
            functools.partial(self._listeners.has, "message"),
        )
        self._io_thread: threading.Thread | None = None
        self._restore_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ public surface

    @property
    def ready_state(self) -> int:
        """CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3)."""
        return self._state

    def __repr__(self) -> str:
        return f"<Connection {self.url} {_STATE_NAMES[self._state]}>"

    def on(self, type: str, listener: F | None = None) -> Any:
        """Adds ``listener`` for events of ``type`` and returns it; a decorator without it.

        Listeners run on the dispatch thread, one at a time, in the order added.

        Raises:
            ValueError: ``type`` is not open, message, close or error.
        """
        check_type(type)
        if listener is None:
            return lambda fn: self.on(type, fn)
        self._listeners.add(type, listener)
        return listener

    def once(self, type: str, listener: F | None = None) -> Any:
        """Like ``on``, but the listener is removed after its first call."""
        check_type(type)
        if listener is None:
            return lambda fn: self.once(type, fn)
        self._listeners.add(type, listener, once=True)
        return listener

    def off(self, type: str, listener: Callable[[Any], object]) -> None:
        """Removes ``listener`` from ``type`` (no error when it was not there)."""
        self._listeners.remove(type, listener)

    def add_event_listener(
        self, type: str, listener: Callable[[Any], object], once: bool = False
    ) -> None:
        """The browser-named form of ``on`` / ``once``."""
        self._listeners.add(type, listener, once=once)

    def remove_event_listener(self, type: str, listener: Callable[[Any], object]) -> None:
        """The browser-named form of ``off``."""
        self._listeners.remove(type, listener)

    def connect(self, timeout: float | None = None) -> Connection:
        """Starts connecting on the background threads.

        Args:
            timeout: None returns at once (like ``new WebSocket(url)``); a number blocks
                until OPEN.

        Raises:
            ConnectError: With a timeout: the connection failed or the time ran out (the
                connection is then closed, and its ``error`` and ``close`` events have run).
            InvalidStateError: ``connect()`` was called before on this connection.
        """
        with self._lock:
            if self._started or self._user_closed:
                raise InvalidStateError("connect() can be called once per Connection")
            self._started = True
            self._state = Connection.CONNECTING
            self._io_done.clear()
        self._connect_timeout = timeout if timeout is not None else self.request_timeout
        first = None
        if timeout is not None:
            # Blocking: the handshake runs right here, which spares a wake-up across threads.
            first = self._open_link(announce=False)  # the io thread fires "open" (below)
            if first is None:
                self._finish_io()
                error = self._last_connect_error
                self.close()
                raise error or ConnectError(f"cannot connect to {self.url}: aborted by close()")
        self._io_thread = threading.Thread(
            target=self._io_main, args=(first,), name=f"deriv_sdk-io-{self._n}", daemon=True
        )
        self._io_thread.start()
        if first is not None:
            # "open" is queued here, before anything this thread may still do (a request,
            # close()) and before the io thread reads; a listener that closes at once finds
            # the io thread started.
            if not self._stop.is_set():
                self._post_event("open", OpenEvent(self, False))
            self._gate.set()
        return self

    def send(self, data: object) -> None:
        """Sends ``data`` as is: dict/list as JSON text, str as text, bytes as binary.

        Safe from any thread. No ``req_id`` is added.

        Raises:
            TypeError: Another type, or a value JSON cannot encode (nothing is sent).
            InvalidStateError: The connection is not OPEN.
            ConnectionClosedError: The socket broke while sending.
        """
        opcode, body = encode_send(data)
        link = self._link
        if self._state != Connection.OPEN or link is None:
            raise InvalidStateError(f"send() needs an OPEN connection, not {self._state_name()}")
        link.send_frame(opcode, body)

    def request(self, payload: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Sends ``payload`` with a fresh ``req_id`` and blocks until its answer.

        Safe from any thread, including from inside a listener. Waits for OPEN (within the
        timeout) while connecting or reconnecting.

        Returns:
            The response dict.

        Raises:
            APIError: The server answered with an error.
            RequestTimeoutError: No answer within ``timeout`` (default ``request_timeout``).
            ConnectionClosedError: The connection dropped or closed first.
            InvalidStateError: Called before ``connect()`` or after ``close()``.
            ValueError: The caller's ``req_id`` collides with a pending request.
            TypeError: The payload is not a mapping or cannot be encoded.
        """
        entry, deadline, timeout = self._start_request(payload, timeout)
        return self._finish_request(entry, deadline, timeout, payload)

    def send_request(self, payload: Mapping[str, Any], callback: Callable[[Any], object]) -> int:
        """Sends ``payload`` with a fresh ``req_id`` without blocking.

        ``callback(result)`` is called once, on the dispatch thread, with the response dict,
        or with the exception (``APIError``, ``RequestTimeoutError`` after
        ``request_timeout``, ``ConnectionClosedError``).

        Returns:
            The ``req_id``.

        Raises:
            InvalidStateError: The connection is not OPEN.
            TypeError, ValueError: As ``request()``.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        if self._state != Connection.OPEN:
            raise InvalidStateError(
                f"send_request() needs an OPEN connection, not {self._state_name()}"
            )

        def deliver(result: Any) -> None:
            if isinstance(result, dict) and "error" in result:
                result = APIError.from_response(result)
            callback(result)

        deadline = time.monotonic() + self.request_timeout
        entry = self._send_tracked(payload, deliver, deadline)
        self._dispatcher.wake()  # the dispatch loop re-reads the earliest deadline
        return entry.req_id

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Closes the connection (browser rules for ``code`` and ``reason``).

        Idempotent; safe from any thread and from inside a listener. Stops keepalive and
        reconnecting, fails pending requests with ``ConnectionClosedError`` and joins the
        SDK's threads (except the calling one).

        Raises:
            ValueError: ``code`` is not 1000 or 3000-4999, or ``reason`` is over 123 bytes.
        """
        _check_close(code, reason)
        with self._lock:
            first = not self._user_closed
            self._user_closed = True
            self._stop.set()
            link, handshake = self._link, self._handshake
            if first:
                self._close_args = (code, reason)
                if self._state != Connection.CLOSED:
                    self._state = Connection.CLOSING
                self._cond.notify_all()
        if first:
            if handshake is not None:
                handshake.abort()
            if link is not None:  # first: it aborts a link stuck in a send, freeing the rest
                link.send_close(code, reason)
            if self._keepalive is not None:
                self._keepalive.stop()
            io = self._io_thread
            if io is None or not io.is_alive():
                # Else the io thread fails them as it ends, before it stops the dispatch
                # thread, so that no callback can be queued after the end.
                self._fail_pending(lambda: ConnectionClosedError("closed by close()", code, reason))
        self._join(link)

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until CLOSED (True) or ``timeout`` seconds (False).

        Ctrl-C (KeyboardInterrupt) closes the connection and is re-raised.
        """
        if timeout is not None:
            timeout = min(timeout, threading.TIMEOUT_MAX)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            if not self._io_done.wait(timeout):
                return False
            if self._dispatcher.on_thread():
                return True  # from a listener: the dispatch thread cannot wait for itself
            # Then until the last events have run, so that a script may exit right after.
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            return self._dispatcher.finished.wait(remaining)
        except KeyboardInterrupt:
            self.close()
            raise

    def __enter__(self) -> Connection:
        """Connects (blocking, ``request_timeout``) unless ``connect()`` was called already."""
        if self._started:
            return self
        return self.connect(timeout=self.request_timeout)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def _state_name(self) -> str:
        return _STATE_NAMES[self._state]

    def _wait_open(self, deadline: float) -> None:
        if self._state == Connection.OPEN:
            return
        with self._cond:
            while self._state != Connection.OPEN:
                if not self._started or self._user_closed:
                    raise InvalidStateError(
                        "the connection is not open: call connect() first"
                        if not self._started
                        else "the connection was closed by close()"
                    )
                if self._terminal:
                    raise ConnectionClosedError("the connection is closed and will not reconnect")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeoutError("the connection did not open in time")
                self._cond.wait(min(remaining, threading.TIMEOUT_MAX))

    def _start_request(
        self, payload: Mapping[str, Any], timeout: float | None
    ) -> tuple[Pending, float, float]:
        if type(payload) is not dict and not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a mapping, not {type(payload).__name__}")
        timeout = self.request_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._wait_open(deadline)
        return self._send_tracked(payload, None, None), deadline, timeout

    def _send_tracked(
        self,
        payload: Mapping[str, Any],
        callback: Callable[[Any], None] | None,
        deadline: float | None,
        inline: bool = False,
        internal: bool = False,
    ) -> Pending:
        entry = self._pending.add(payload.get("req_id"), callback, deadline, inline)
        if logger.isEnabledFor(logging.DEBUG):  # the call's name only: payloads hold secrets
            logger.debug("-> %s (req_id %d)", _call(payload), entry.req_id)
        try:
            self._send_internal(stamp(payload, entry.req_id), internal=internal)
        except BaseException:
            self._pending.discard(entry)
            raise
        return entry

    def _send_internal(self, message: dict[str, Any], internal: bool = False) -> None:
        """Sends a request; ``internal`` ones (restore, keepalive) also while CONNECTING.

        A user's request goes out only while OPEN: after a reconnect, not before the
        restore has re-authorized.
        """
        body = dumps(message)
        link = self._link
        if link is None or not (internal or self._state == Connection.OPEN):
            raise ConnectionClosedError("the connection dropped before the request was sent")
        link.send_frame(OP_TEXT, body)

    def _finish_request(
        self, entry: Pending, deadline: float, timeout: float, payload: Mapping[str, Any]
    ) -> dict[str, Any]:
        if not entry.wait(deadline - time.monotonic()):
            if self._pending.discard(entry):
                raise RequestTimeoutError(
                    f"no answer to {_call(payload)} (req_id {entry.req_id}) within {timeout}s"
                )
            entry.wait(None)  # resolved at the same moment: the result is there
        result = entry.result
        if isinstance(result, BaseException):
            raise result
        if "error" in result:
            raise APIError.from_response(result)
        response: dict[str, Any] = result
        return response

    def _fail_pending(self, factory: Callable[[], BaseException]) -> None:
        for entry in self._pending.fail_all(factory):
            self._dispatcher.run_callback(entry)

    # ------------------------------------------------------------------ keepalive

    def _send_ping(self, on_answer: Callable[[], None]) -> bool:
        def answered(result: Any) -> None:
            if isinstance(result, dict):
                on_answer()

        try:
            self._send_tracked({"ping": 1}, answered, None, inline=True, internal=True)
        except (ConnectionClosedError, InvalidStateError):
            return False
        return True

    def _link_dead(self) -> None:
        link = self._link
        if link is not None:
            self._drop_reason = "keepalive timeout"
            link.abort()  # the io thread sees the read end and handles the drop

    # ------------------------------------------------------------------ io thread

    def _io_main(self, first: Link | None) -> None:
        if first is not None:
            self._gate.wait()  # until connect() has queued "open" (never long)
        try:
            self._io_loop(first)
        except Exception:  # a bug of ours: never leave a caller waiting because of it
            logger.exception("internal error in the io thread")
        finally:
            self._finish_io()

    def _finish_io(self) -> None:
        """The end of the connection's life: CLOSED, nothing pending, the last events."""
        with self._cond:
            self._state = Connection.CLOSED
            self._terminal = True  # read by _wait_open, in the same locked section
            link, self._link = self._link, None
            self._cond.notify_all()
        if link is not None:  # e.g. close() came before the io thread read the first link
            link.close()
        if self._keepalive is not None:
            self._keepalive.stop()
        self._fail_pending(lambda: ConnectionClosedError("the connection is closed"))
        for stream in self._subs.streams():
            self._subs.end(stream)
        if not self._final_close_sent:
            code, reason = self._close_args if self._user_closed else (1006, "")
            self._post_close(code, reason, False, False)
        self._io_done.set()
        self._dispatcher.stop()  # ends the dispatch thread after what is queued

    def _io_loop(self, link: Link | None) -> None:
        while True:
            if link is None:  # (a link in hand is read even after close(): its echo)
                if self._stop.is_set():
                    return
                link = self._open_link()
            if link is None:
                if self._stop.is_set() or not self._retry_allowed():
                    return
                if self._stop.wait(self._backoff.next_delay()):
                    return
                continue
            code, reason, clean = self._inbound.read(link)
            closed, link = link, None
            with self._cond:
                self._link = None
                will_reconnect = not self._user_closed and self._retry_allowed()
                self._state = Connection.CONNECTING if will_reconnect else Connection.CLOSING
                self._cond.notify_all()
            closed.close()
            if self._keepalive is not None:
                self._keepalive.stop()
            if not clean and self._drop_reason:
                reason, self._drop_reason = reason or self._drop_reason, ""
            logger.info("connection closed: code %s %s", code, reason)
            self._subs.unbind_all()
            what = "closed by close()" if self._user_closed else "the connection dropped"
            self._fail_pending(functools.partial(ConnectionClosedError, what, code, reason))
            self._post_close(code, reason, clean, will_reconnect)
            if not will_reconnect:
                return
            if self._stop.wait(self._backoff.next_delay()):
                return

    def _retry_allowed(self) -> bool:
        limit = self.max_reconnect_attempts
        return (
            self.reconnect
            and self._ever_opened
            and not self._fatal
            and not self._inbound.fatal
            and (limit is None or self._backoff.attempt < limit)
        )

    def _open_link(self, announce: bool = True) -> Link | None:
        handshake = Handshake(
            self.url,
            timeout=self._connect_timeout,
            headers=self._headers,
            ssl_context=self._ssl_context,
        )
        with self._lock:
            if self._stop.is_set():
                return None
            self._handshake = handshake
        try:
            sock = handshake.run()
        except ConnectError as exc:
            with self._lock:
                self._handshake = None
            if self._stop.is_set():
                return None
            self._last_connect_error = exc
            if exc.status in _FATAL_STATUSES:
                self._fatal = True
            logger.info("connect failed: %s", exc)
            self._post_event("error", ErrorEvent(self, exc))
            return None
        link = Link(sock)
        with self._cond:
            self._handshake = None
            if self._stop.is_set():
                link.close()
                return None
            self._link = link
            self._generation += 1
            generation = self._generation
            reconnected = self._ever_opened
            if not reconnected:
                self._ever_opened = True
                self._state = Connection.OPEN
                self._cond.notify_all()
        if self._keepalive is not None:
            self._keepalive.start()
        logger.info("connected to %s%s", self.url, " (reconnected)" if reconnected else "")
        if reconnected:
            self._start_restore(generation)
        elif announce:
            self._post_event("open", OpenEvent(self, False))
        return link

    # ------------------------------------------------------------------ restore

    def _start_restore(self, generation: int) -> None:
        thread = threading.Thread(
            target=self._restore,
            args=(generation,),
            name=f"deriv_sdk-restore-{self._n}",
            daemon=True,
        )
        old, self._restore_thread = self._restore_thread, thread
        if old is not None:
            old.join(JOIN_TIMEOUT)
        thread.start()

    def _restore(self, generation: int) -> None:
        """After a reconnect: authorize, re-subscribe (``calls.py``), then fire ``open``."""
        try:
            self._restore_session()
        except (ConnectionClosedError, InvalidStateError):
            return  # dropped again (or closed): the io thread carries on
        except Exception as exc:  # e.g. a payload that no longer encodes: never hang CONNECTING
            logger.exception("restoring the session failed")
            self._post_event("error", ErrorEvent(self, exc))
            link = self._link
            if link is not None:
                link.abort()  # the normal reconnect path takes over
            return
        with self._cond:
            if generation != self._generation or self._link is None or self._user_closed:
                return
            self._state = Connection.OPEN
            self._cond.notify_all()
        # Only a restored session counts as a success: a server that accepts and then
        # drops at once must not reset the backoff into a reconnect storm.
        self._backoff.reset()
        self._post_event("open", OpenEvent(self, True))

    # ------------------------------------------------------------------ events

    def _post_event(self, type: str, event: Event) -> None:
        self._dispatcher.post_event(type, event)

    def _post_close(self, code: int, reason: str, clean: bool, will_reconnect: bool) -> None:
        self._final_close_sent = not will_reconnect
        self._post_event("close", CloseEvent(self, code, reason, clean, will_reconnect))

    # ------------------------------------------------------------------ close

    def _join(self, link: Link | None) -> None:
        current = threading.current_thread()
        io = self._io_thread
        if io is not None and io is not current:
            io.join(CLOSE_HANDSHAKE_TIMEOUT)
            if io.is_alive():  # no close echo in time: end the TCP connection ourselves
                if link is not None:
                    link.abort()
                latest = self._link
                if latest is not None:
                    latest.abort()
                io.join(JOIN_TIMEOUT)
        restore = self._restore_thread
        if restore is not None and restore is not current:
            restore.join(JOIN_TIMEOUT)
        if self._io_done.is_set():
            self._dispatcher.join(JOIN_TIMEOUT)


def _call(payload: Mapping[str, Any]) -> str:
    try:
        return call_name(payload)
    except ValueError:
        return "request"
