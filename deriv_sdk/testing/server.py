"""``LocalServer``: a local Deriv server, v3 and the new API on one port, with fault controls.

Threads (all daemons named ``deriv_sdk-server-...``, all joined by :meth:`LocalServer.stop`):

- ``deriv_sdk-server-accept``: accepts TCP connections and starts one thread each (see
  :mod:`deriv_sdk.testing.listener`: our own accept loop, so that every thread is a named
  daemon that stop() can join);
- ``deriv_sdk-server-conn-N``: connection N's TLS handshake, HTTP front door and REST calls,
  or websockets' handshake and our request handler;
- ``deriv_sdk-server-recv-N``: websockets' reader thread for connection N;
- ``deriv_sdk-server-send-N``: our writer for connection N (the only thread that sends on it);
- ``deriv_sdk-server-ticks``: the one scheduler that moves the market every ``tick_interval``
  and queues the messages of every stream (ticks, candles, proposals, open contracts) of
  both APIs.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from types import TracebackType
from typing import Any

from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import ServerConnection

from deriv_sdk.testing import connections
from deriv_sdk.testing.accounts import Account, Contract
from deriv_sdk.testing.listener import Listener
from deriv_sdk.testing.market import Market
from deriv_sdk.testing.pats import OptionsAccount
from deriv_sdk.testing.rest import RestApi
from deriv_sdk.testing.scheduler import tick_loop
from deriv_sdk.testing.session import Session
from deriv_sdk.testing.state import ServerState

logger = logging.getLogger("deriv_sdk.testing")

#: Seconds that :meth:`LocalServer.stop` waits for connections to close cleanly before it
#: drops them, and then for threads to end.
STOP_TIMEOUT = 3.0


class LocalServer:
    """A real server that speaks Deriv's v3 protocol and its new API, for development and tests.

    v3 answers WebSockets at any path but the new API's (use :attr:`url`). The new API, on
    the same port, answers its REST endpoints (:attr:`rest_url`; see
    :mod:`deriv_sdk.testing.rest`) and its WebSockets ``/trading/v1/options/ws/public``
    (:attr:`options_url`, no credentials) and ``/ws/demo|real?otp=...`` (the URL of the REST
    OTP call). Both share one market, one scheduler and one pricing; the accounts of the two
    APIs are separate.

    Args:
        host: interface to listen on.
        port: TCP port; 0 picks a free one (read it from :attr:`port`).
        tokens: valid tokens for ``authorize``: a list (each token gets a virtual USD account
            with 10,000) or a dict token -> account fields (``loginid``, ``currency``,
            ``balance``, ``email``, ``fullname``, ``country``, ``scopes``).
        tick_interval: seconds between two ticks of every stream (e.g. 0.01 for 100 ticks/s).
        seed: seed of the random walk of quotes (None: different every run).
        ssl_context: a server-side :class:`ssl.SSLContext` to serve ``wss://``.
        rate_limits: call name -> most requests per minute per connection (either API);
            beyond it the request gets Deriv's ``RateLimit`` error.
        pats: the new API's valid PATs: a list (each gets one demo account with 10,000 USD,
            its ``account_id`` derived from the PAT, the same in every process) or a dict PAT
            -> list of account dicts (``account_id``, ``balance``, ``currency``, ``group``,
            ``status``, ``account_type``).
        otp_ttl: seconds an OTP of the REST OTP call stays valid (it works once).

    Connections whose URL has no numeric ``app_id`` query parameter complete the handshake,
    then every request gets Deriv's ``InvalidAppID`` error and, after the first such answer,
    the server closes the connection with code 1008.

    Fault controls (any thread, any time; every WebSocket of either API): :meth:`drop`,
    :meth:`close_all`, :meth:`stall` / :meth:`resume`, :meth:`delay`, :meth:`send_malformed`,
    :meth:`refuse` (also REST calls). REST answers are held by a stall and delayed by a
    delay too.

    Stalling: while stalled, nothing is sent on any connection (no replies, no ticks, no
    answer to ``{"ping": 1}``) and the markets stand still. Requests that arrive are *held*,
    recorded in :attr:`requests` at once, and answered in order after :meth:`resume`;
    those of a connection closed meanwhile (:meth:`drop`, :meth:`close_all`) are discarded.
    websockets' own reader still answers protocol-level Ping frames (control frames, not
    Deriv messages).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: list[str] | dict[str, dict[str, Any]] | None = None,
        tick_interval: float = 1.0,
        seed: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        rate_limits: dict[str, int] | None = None,
        pats: list[str] | dict[str, list[dict[str, Any]]] | None = None,
        otp_ttl: float = 120.0,
    ) -> None:
        if tick_interval <= 0:
            raise ValueError("tick_interval must be positive")
        self.host = host
        self.port = port
        self.tick_interval = float(tick_interval)
        self.ssl_context = ssl_context
        self.state = ServerState(tokens, seed, rate_limits, pats, otp_ttl)
        self._rest = RestApi(self.state, self._ws_base)
        self._meta = threading.Lock()  # guards _state
        self._state = "new"  # new -> started -> stopped
        self._listener: Listener | None = None

    # -- the shared state, for tests that change it (take ``lock`` first) ---------------

    @property
    def lock(self) -> threading.RLock:
        """The lock of the server's state: hold it to change :attr:`accounts` and the like."""
        return self.state.lock

    @property
    def accounts(self) -> dict[str, Account]:
        """v3 token -> :class:`~deriv_sdk.testing.accounts.Account` (change under :attr:`lock`)."""
        return self.state.accounts

    @property
    def contracts(self) -> dict[int, Contract]:
        """Contract id -> :class:`~deriv_sdk.testing.accounts.Contract` of every account."""
        return self.state.contracts

    @property
    def market(self) -> Market:
        """The simulated market (quotes move under :attr:`lock`)."""
        return self.state.market

    @property
    def rate_limits(self) -> dict[str, int]:
        """Call name -> most requests per minute per connection."""
        return self.state.rate_limits

    # -- lifecycle ---------------------------------------------------------------------

    def _authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def _ws_base(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self._authority()}"

    @property
    def url(self) -> str:
        """``ws://host:port/websockets/v3?app_id=1089&l=EN&brand=deriv`` (``wss://`` with TLS)."""
        return f"{self._ws_base()}/websockets/v3?app_id=1089&l=EN&brand=deriv"

    @property
    def options_url(self) -> str:
        """The new API's public socket: ``ws://host:port/trading/v1/options/ws/public``."""
        return f"{self._ws_base()}/trading/v1/options/ws/public"

    @property
    def rest_url(self) -> str:
        """The new API's REST base URL: ``http://host:port`` (``https://`` with TLS)."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self._authority()}"

    @property
    def pats(self) -> dict[str, list[OptionsAccount]]:
        """PAT -> its accounts (the new API; change under :attr:`lock`)."""
        return self.state.pat_accounts

    @property
    def rest_requests(self) -> list[dict[str, Any]]:
        """Every REST request: ``{"method", "path", "status"}`` (no query, no header), in
        order. A copy, safe from any thread."""
        return self.state.rest_requests()

    @property
    def handshakes(self) -> list[dict[str, Any]]:
        """Every WebSocket handshake: ``{"api": "legacy"|"options", "path", "status",
        "otp"}`` (``otp`` None when the URL had none), in order. A copy, safe from any
        thread."""
        return self.state.handshakes()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received (decoded JSON objects), in order, across connections.

        A copy, safe to read from any thread; the last
        :data:`~deriv_sdk.testing.state.MAX_LOG` are kept.
        """
        return self.state.requests()

    def start(self) -> LocalServer:
        """Listen and start the threads; returns once the socket listens. Returns self.

        Raises:
            RuntimeError: when called twice.
            OSError: when the address cannot be bound.
        """
        with self._meta:
            if self._state != "new":
                raise RuntimeError("a LocalServer can only be started once")
            self._state = "starting"
        try:
            self._listener = Listener(
                self.host,
                self.port,
                self.ssl_context,
                self._handle,
                self._process_request,
                self._process_response,
                self._rest,
            )
        except BaseException:
            with self._meta:
                self._state = "new"  # nothing started: start() may be tried again
            raise
        self.port = self._listener.port
        with self._meta:
            self._state = "started"
        ticks = threading.Thread(
            target=tick_loop,
            args=(self.state, self.tick_interval),
            name="deriv_sdk-server-ticks",
            daemon=True,
        )
        self._listener.track(ticks)
        ticks.start()
        logger.info("LocalServer listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Close every connection and join every thread. Idempotent, bounded in time.

        Connections get a close frame (1001) first; those still open after a short wait are
        dropped.
        """
        with self._meta:
            if self._state != "started":
                self._state = "stopped"
                return
            self._state = "stopped"
        self.state.stopping.set()
        self.state.running.set()  # wake the handlers that hold requests: they discard them
        listener = self._listener
        assert listener is not None
        listener.stop_accepting(STOP_TIMEOUT)  # no new connections after this
        # Clients that connected but never sent a request, and idle HTTP keep-alive ones.
        listener.abort(ws_states=frozenset({State.CONNECTING}))
        for session in self.state.sessions_copy():
            session.request_close(1001, "server stopping")
        if not listener.join_all(time.monotonic() + STOP_TIMEOUT):
            listener.abort()
            if not listener.join_all(time.monotonic() + STOP_TIMEOUT):
                logger.warning("LocalServer.stop(): threads still alive: %s", listener.alive())
        listener.close()
        logger.info("LocalServer stopped")

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- fault controls ----------------------------------------------------------------

    def drop(self) -> None:
        """Close every connection abruptly: shut the TCP socket down, no close frame.

        Nothing queued for those connections is sent, and requests held by :meth:`stall`
        are discarded, even if :meth:`resume` follows at once. HTTP connections (REST,
        idle keep-alive, a handshake being read) are shut too.
        """
        for session in self.state.sessions_copy():
            session.finish()
        if self._listener is not None:
            self._listener.abort(ws_states=frozenset({State.OPEN}))

    def close_all(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake of every connection with ``code``/``reason``.

        Returns at once; each connection's writer sends the close frame (before anything
        still queued, even while stalled or delayed).

        Raises:
            ValueError: for a code that may not be sent in a close frame (e.g. 1005, 1006)
                or a reason longer than 123 UTF-8 bytes.
        """
        if not (code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999):
            raise ValueError(f"invalid close code: {code}")
        if len(reason.encode("utf-8")) > 123:
            raise ValueError("close reason must be at most 123 UTF-8 bytes")
        for session in self.state.sessions_copy():
            session.request_close(code, reason)

    def stall(self) -> None:
        """Stop answering and sending on every connection (see the class docstring)."""
        self.state.running.clear()

    def resume(self) -> None:
        """End :meth:`stall`: held requests are answered and streams go on."""
        self.state.running.set()
        for session in self.state.sessions_copy():
            session.wake()

    def delay(self, seconds: float) -> None:
        """Delay every message queued from now on by ``seconds`` (0 ends the delay)."""
        self.state.set_delay(seconds)

    def send_malformed(self) -> None:
        """Queue one text frame that is not JSON to every connection."""
        for session in self.state.sessions_copy():
            session.send_text('{"msg_type": "tick", not json')

    def refuse(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` HTTP requests with ``status`` instead: WebSocket
        handshakes of either API and REST calls, in the order they arrive, each with
        Deriv's error envelope (``{"errors": [...], "meta": ...}``) as its body.

        Raises:
            ValueError: a negative ``count``, or a ``status`` that is not a known 4xx/5xx.
        """
        self.state.refuse(count, status)

    # -- internals ----------------------------------------------------------------------

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        return connections.process_request(self.state, conn, request)

    def _process_response(
        self, conn: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        return connections.process_response(self.state, conn, request, response)

    def _handle(self, conn: ServerConnection) -> None:
        connections.serve(self.state, conn, self._start_writer)

    def _start_writer(self, session: Session) -> None:
        assert self._listener is not None
        self._listener.track(session.writer)
        session.writer.start()
