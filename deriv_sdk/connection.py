"""``Connection``: the browser-shaped Deriv WebSocket client, on background threads.

``Connection`` is the public surface and the wiring of its parts, each owned here and handed
its collaborators:

- ``lifecycle.Lifecycle`` and ``RetryPolicy``: the phase, and whether retrying can help;
- ``endpoint``: each attempt's URL and headers, and the session steps after a reconnect
  (Deriv v3 here; the new API in ``options.py``);
- ``outbound.Outbound``: the one path of every request, over ``pending.PendingTable``;
- ``streams.Streams`` over ``subscriptions.SubscriptionRegistry``: subscribe, forget, restore;
- ``runner.Runner`` (the io thread), ``reader.Reader`` and ``inbound.Router``: attempts,
  reading, routing; ``dispatch.Dispatcher`` (the dispatch thread): every listener and
  callback; ``keepalive.Keepalive``: the ping.

The threads and their rules are described in ``runner.py``, ``dispatch.py`` and
``docs/threads.md``. No user code, sleep or join ever runs under a lock of ours.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .backoff import Backoff
from .dispatch import Dispatcher
from .endpoint import (
    DEFAULT_BRAND,
    DEFAULT_HOST,
    DEFAULT_LANGUAGE,
    Endpoint,
    legacy_endpoint,
)
from .errors import APIError, ConnectError, InvalidStateError
from .events import ListenerRegistry, check_type
from .frames import check_user_close
from .inbound import Router
from .keepalive import Keepalive
from .lifecycle import Lifecycle, Phase, RetryPolicy
from .outbound import Outbound
from .pending import PendingTable, check_timeout
from .protocol import encode_send
from .reader import Reader
from .runner import Runner, SessionEvents, link_dead
from .streams import Streams
from .subscriptions import EndListener, MessageListener, Subscription, SubscriptionRegistry
from .urls import host_of

if TYPE_CHECKING:
    from .rest import RestClient

__all__ = ["Connection"]

logger = logging.getLogger("deriv_sdk.connection")

F = TypeVar("F", bound=Callable[..., Any])
_ids = itertools.count(1)
_STATE_NAMES = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")


class Connection:
    """One WebSocket connection to Deriv, shaped like the browser's ``WebSocket``.

    Nothing touches the network until ``connect()``. The whole contract is in
    ``docs/api.md``; the arguments are described in the README. Listeners and callbacks run
    on the dispatch thread.

    Raises:
        ValueError: A bad argument, or ``url=`` together with ``app_id``, ``endpoint``,
            ``language`` or ``brand``.
    """

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3

    def __init__(
        self,
        app_id: int | str | None = None,
        *,
        endpoint: str = DEFAULT_HOST,
        url: str | Callable[[], str] | None = None,
        language: str = DEFAULT_LANGUAGE,
        brand: str = DEFAULT_BRAND,
        keepalive_interval: float | None = 30.0,
        keepalive_timeout: float | None = 10.0,
        request_timeout: float = 30.0,
        reconnect: bool = True,
        reconnect_delay: float = 1.0,
        reconnect_max_delay: float = 30.0,
        max_reconnect_attempts: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        headers: Mapping[str, str] | None = None,
        max_queue: int | None = 10_000,
    ) -> None:
        target = legacy_endpoint(
            app_id,
            endpoint=endpoint,
            url=url,
            language=language,
            brand=brand,
            headers=headers,
        )
        self._build(
            target,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            request_timeout=request_timeout,
            reconnect=reconnect,
            reconnect_delay=reconnect_delay,
            reconnect_max_delay=reconnect_max_delay,
            max_reconnect_attempts=max_reconnect_attempts,
            ssl_context=ssl_context,
            max_queue=max_queue,
        )

    def _build(
        self,
        endpoint: Endpoint,
        *,
        keepalive_interval: float | None,
        keepalive_timeout: float | None,
        request_timeout: float,
        reconnect: bool,
        reconnect_delay: float,
        reconnect_max_delay: float,
        max_reconnect_attempts: int | None,
        ssl_context: ssl.SSLContext | None,
        max_queue: int | None,
    ) -> None:
        """Builds the parts around ``endpoint`` (shared with ``Connection.options``)."""
        timeout = check_timeout(request_timeout, "request_timeout")
        if max_reconnect_attempts is not None and (
            isinstance(max_reconnect_attempts, bool)
            or not isinstance(max_reconnect_attempts, int)
            or max_reconnect_attempts < 0
        ):
            raise ValueError("max_reconnect_attempts must be an int >= 0 or None")
        if max_queue is not None and (
            isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1
        ):
            raise ValueError("max_queue must be an int >= 1 or None")
        self.request_timeout = float("inf") if timeout is None else timeout
        self.reconnect = bool(reconnect)
        self.max_reconnect_attempts = max_reconnect_attempts
        n = str(next(_ids))
        self._endpoint = endpoint
        self._lifecycle = lc = Lifecycle()
        self._policy = RetryPolicy(
            self.reconnect, max_reconnect_attempts, Backoff(reconnect_delay, reconnect_max_delay)
        )
        self._listeners = listeners = ListenerRegistry()
        registry = SubscriptionRegistry()
        # A live stream keeps its req_id, and one that ended keeps it until its link ends.
        pending = PendingTable(reserved=registry.reserved_ids())
        dispatcher = Dispatcher(self, listeners, pending, f"deriv_sdk-dispatch-{n}", max_queue)
        listeners.on_listener_error = dispatcher.listener_failed
        self._dispatcher = dispatcher
        self._outbound = Outbound(pending, lc, dispatcher, timeout, endpoint.explain())
        self._registry = registry
        self._streams = Streams(registry, self._outbound, lc, dispatcher)
        registry.on_abandon = self._streams.abandon
        self._keepalive = (
            None
            if keepalive_interval is None
            else Keepalive(
                keepalive_interval,
                keepalive_timeout,
                self._outbound.ping,
                link_dead,
                name=f"deriv_sdk-keepalive-{n}",
            )
        )
        router = Router(
            self, self._outbound, registry, dispatcher, self._listeners,
            SessionEvents(endpoint, self._policy),
        )  # fmt: skip
        reader = Reader(router, dispatcher, self._keepalive, lc.stop)
        self._runner = Runner(
            self, n, lc, self._policy, endpoint, self._outbound, self._streams, registry,
            dispatcher, reader, self._keepalive, timeout, ssl_context,
        )  # fmt: skip

    @classmethod
    def options(
        cls,
        account_id: str | None = None,
        *,
        rest: RestClient | None = None,
        endpoint: str = "api.derivws.com",
        url: str | None = None,
        **kwargs: Any,
    ) -> Connection:  # (endpoint's default: options.DEFAULT_HOST)
        """A connection to Deriv's new API (not yet connected, like ``Connection(...)``).

        Without ``account_id``: the public socket (market data, no account), at
        ``wss://{endpoint}/trading/v1/options/ws/public`` or ``url``. With ``account_id``
        (``rest`` required, ``url`` refused): that account's socket, through a one-time URL
        that ``rest.otp_url(account_id)`` fetches before every connect attempt, on the io
        thread. Every other keyword of ``Connection`` applies. See ``options.py`` for which
        failures are retried.

        Raises:
            TypeError: ``app_id``, ``language`` or ``brand`` (they belong to v3), or an
                unknown keyword.
            ValueError: ``account_id`` without ``rest``, or with ``url``.
        """
        from .options import options_endpoint  # (no http.client on import deriv_sdk)

        for name in ("app_id", "language", "brand"):
            if name in kwargs:
                raise TypeError(f"Connection.options() takes no {name} (a v3 setting)")
        unknown = sorted(set(kwargs) - set(_SETTINGS) - {"headers"})
        if unknown:
            raise TypeError(f"Connection.options() got unexpected keywords {unknown}")
        headers = kwargs.pop("headers", None)
        settings = {**_SETTINGS, **kwargs}
        target = options_endpoint(
            account_id, rest=rest, endpoint=endpoint, url=url, headers=headers
        )
        conn = cls.__new__(cls)
        conn._build(target, **settings)
        return conn

    # ------------------------------------------------------------------ state

    @property
    def ready_state(self) -> int:
        """CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3)."""
        return self._lifecycle.ready_state

    @property
    def url(self) -> str | None:
        """The URL (the last one used when it changes per attempt), secrets redacted."""
        return self._endpoint.url

    def __repr__(self) -> str:
        return f"<Connection {self.url} {_STATE_NAMES[self.ready_state]}>"

    # ------------------------------------------------------------------ listeners

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

    # ------------------------------------------------------------------ connect

    def connect(self, timeout: float | None = None, *, retry: bool = False) -> Connection:
        """Starts connecting on the background threads.

        Args:
            timeout: None returns at once (like ``new WebSocket(url)``); a number blocks
                until OPEN, and is a total deadline for DNS, TCP, TLS and the HTTP upgrade
                (and, with ``retry``, for every attempt and backoff in between).
            retry: Retry a first connection that fails, like a reconnect (same backoff and
                ``max_reconnect_attempts``; one ``error`` event per failed attempt).

        Raises:
            ConnectError: With a timeout: the connection failed for good or the time ran out
                (the connection is then closed, and its ``error`` and ``close`` events have
                run).
            InvalidStateError: ``connect()`` was called before, or ``close()``.
        """
        blocking = timeout is not None
        seconds = check_timeout(timeout) if blocking else None  # (blocking: None is no limit)
        self._runner.begin(seconds, retry)
        if not blocking:
            return self
        if self._runner.wait_first_open(None if seconds is None else time.monotonic() + seconds):
            return self
        failure = self._runner.last_failure
        ended = self._lifecycle.phase is Phase.CLOSED
        self.close()  # (after a failure: it waits for the error and close events to run)
        if ended and failure is not None:
            raise failure
        where = host_of(self.url) if self.url else "the server"
        raise ConnectError(f"cannot connect to {where}: timed out after {timeout}s") from failure

    def __enter__(self) -> Connection:
        """Connects (blocking, ``request_timeout``) unless ``connect()`` was called already."""
        if self._lifecycle.phase is not Phase.NEW:
            return self
        return self.connect(timeout=self.request_timeout)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ sending

    def send(self, data: object) -> None:
        """Sends ``data`` as is: dict/list as JSON text, str as text, bytes as binary.

        Safe from any thread. No ``req_id`` is added.

        Raises:
            TypeError: Another type, or a value JSON cannot encode (nothing is sent).
            InvalidStateError: The connection is not OPEN.
            ConnectionClosedError: The socket broke while sending.
        """
        opcode, body = encode_send(data)
        lc = self._lifecycle
        link = lc.open_link
        if lc.phase is not Phase.OPEN or link is None:
            state = _STATE_NAMES[lc.ready_state]
            raise InvalidStateError(f"send() needs an OPEN connection, not {state}")
        link.send_frame(opcode, body)

    def request(self, payload: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Sends ``payload`` with a fresh ``req_id`` and blocks until its answer.

        Safe from any thread, including from inside a listener. Waits for OPEN (within the
        timeout) while connecting or reconnecting. The caller's dict is never changed.

        Returns:
            The response dict.

        Raises:
            APIError: The server answered with an error.
            RequestTimeoutError: No answer within ``timeout`` (default ``request_timeout``).
            ConnectionClosedError: The connection dropped or closed first.
            InvalidStateError: Called before ``connect()`` or after ``close()``.
            ValueError: The caller's ``req_id`` is taken, the payload names no call, or the
                timeout is not a positive number.
            TypeError: The payload is not a mapping or cannot be encoded.
        """
        return self._outbound.request(payload, timeout)

    def send_request(self, payload: Mapping[str, Any], callback: Callable[[Any], object]) -> int:
        """Sends ``payload`` with a fresh ``req_id`` without blocking.

        ``callback(result)`` is called exactly once, on the dispatch thread, with the
        response dict or the exception (``APIError``, ``RequestTimeoutError`` after
        ``request_timeout``, ``ConnectionClosedError``). While connecting or reconnecting the
        request waits (within ``request_timeout``) and goes out once the connection is OPEN.
        A failure after this call returns is only ever reported to ``callback``.

        Returns:
            The ``req_id``.

        Raises:
            InvalidStateError: Called before ``connect()`` or after ``close()``.
            ConnectionClosedError: The connection has ended and will not reconnect.
            TypeError, ValueError: As ``request()`` (nothing is sent, no callback follows).
        """
        return self._outbound.send_request(payload, callback)

    def subscribe(
        self,
        payload: Mapping[str, Any],
        listener: MessageListener,
        timeout: float | None = None,
        *,
        on_end: EndListener | None = None,
    ) -> Subscription:
        """Starts a stream (``subscribe: 1`` is added) and blocks until its first reply.

        ``listener(message)`` is then called, on the dispatch thread, with the first and
        every later message of the stream; after a reconnect the stream is re-subscribed
        (the first message then carries a new ``subscription.id``). ``on_end(subscription)``
        runs once, on the dispatch thread, when it ends for any reason other than its own
        ``forget()``; ``subscription.error`` then says why (None for a normal end).

        Raises:
            APIError: The server refused (e.g. an unknown symbol); nothing stays registered.
            RequestTimeoutError, ConnectionClosedError, InvalidStateError: As ``request()``.
        """
        return self._streams.subscribe(payload, listener, timeout, on_end)

    def forget(
        self, subscription_id: str, timeout: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        """The ``forget`` call (``fields``: e.g. ``passthrough``); ends the local
        Subscriptions of that stream first."""
        return self._streams.forget(subscription_id, timeout, fields)

    def forget_all(
        self, *stream_types: str, timeout: float | None = None, **fields: Any
    ) -> list[str]:
        """The ``forget_all`` call (e.g. ``"ticks"``, ``"candles"``, ``"proposal"``).

        Ends the local Subscriptions of those types first. Returns the ids forgotten.
        """
        ids = self._streams.forget_all(stream_types, timeout, fields).get("forget_all") or []
        return [i for i in ids if isinstance(i, str)]

    def _forget_all(
        self, stream_types: tuple[str, ...], timeout: float | None, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """``forget_all`` returning the whole response (for ``deriv_sdk.api``)."""
        return self._streams.forget_all(stream_types, timeout, fields)

    def authorize(self, token: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """The ``authorize`` call (``fields``: Deriv's other fields of it, e.g.
        ``add_to_login_history``, ``passthrough``). On success the token is remembered, so
        that a reconnect re-authorizes before anything else (until a successful ``logout``).
        The token never appears in logs, ``repr()`` or exception text.

        Raises:
            ValueError: On a new-API connection (``Connection.options``): there is no
                ``authorize`` call there (nothing is sent).
            APIError: e.g. ``InvalidToken``. Others as ``request()``.
        """
        if not self._endpoint.authorize_allowed():
            raise ValueError(
                "Deriv's new API has no authorize call: the account's connection is "
                "authenticated by its one-time URL (Connection.options(account_id=..., rest=...))"
            )
        if not isinstance(token, str) or not token:
            raise TypeError("token must be a non-empty str")
        try:
            response = self._outbound.request({**fields, "authorize": token}, timeout)
        except APIError as exc:
            raise exc.redacted(token) from None
        self._endpoint.remember(token)
        return response

    # ------------------------------------------------------------------ closing

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Closes the connection (browser rules for ``code`` and ``reason``).

        Idempotent; safe from any thread and from inside a listener. Stops keepalive and
        reconnecting, fails pending requests with ``ConnectionClosedError``, ends the
        Subscriptions (``on_end``), and joins the SDK's threads (except the calling one;
        a listener that does not return gets at most 1 s). Never raises for the state the
        connection is in, and returns within about 1.5 s.

        Raises:
            ValueError: ``code`` is not 1000 or 3000-4999, or ``reason`` is over 123 bytes.
        """
        check_user_close(code, reason)
        self._runner.close(code, reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until CLOSED and the last events have run (True) or ``timeout`` (False).

        Ctrl-C (KeyboardInterrupt) closes the connection and is re-raised.
        """
        try:
            return self._runner.wait_closed(timeout)
        except KeyboardInterrupt:
            self.close()
            raise


# The connection settings of __init__ (every keyword but the v3 URL's), with their defaults:
# Connection.options() takes the same.
# (__kwdefaults__, not inspect.signature: importing inspect costs ~10% of `import deriv_sdk`)
_SETTINGS: dict[str, Any] = {
    name: default
    for name, default in (Connection.__init__.__kwdefaults__ or {}).items()
    if name not in ("endpoint", "url", "language", "brand", "headers")
}
