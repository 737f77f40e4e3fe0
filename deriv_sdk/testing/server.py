"""``LocalServer``: a Deriv v3 compatible WebSocket server on loopback, with fault controls.

Threads (all daemons named ``deriv_sdk-server-...``, all joined by :meth:`LocalServer.stop`):

- ``deriv_sdk-server-accept``: accepts TCP connections and starts one handler thread each
  (see :mod:`deriv_sdk.testing.listener`: our own accept loop, so that every thread is a
  named daemon that stop() can join);
- ``deriv_sdk-server-conn-N``: websockets' handshake and our request handler for connection N;
- ``deriv_sdk-server-recv-N``: websockets' reader thread for connection N;
- ``deriv_sdk-server-send-N``: our writer for connection N (the only thread that sends on it);
- ``deriv_sdk-server-ticks``: the one scheduler that moves the market every ``tick_interval``
  and queues the messages of every stream (ticks, candles, proposals, open contracts).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection

from deriv_sdk.testing import envelope
from deriv_sdk.testing.accounts import Account, Contract, make_accounts
from deriv_sdk.testing.handlers import dispatch, market_tick
from deriv_sdk.testing.listener import Listener
from deriv_sdk.testing.market import SYMBOLS, Market
from deriv_sdk.testing.session import Session
from deriv_sdk.testing.trading import ProposalEntry, trading_tick

logger = logging.getLogger("deriv_sdk.testing")

#: Seconds that :meth:`LocalServer.stop` waits for connections to close cleanly before it
#: drops them, and then for threads to end.
STOP_TIMEOUT = 3.0

#: :attr:`LocalServer.requests` keeps the last this many requests (a server that runs for days
#: in the foreground must not grow without bound).
MAX_REQUESTS = 100_000


class LocalServer:
    """A real WebSocket server that speaks Deriv's v3 protocol, for development and tests.

    Args:
        host: interface to listen on.
        port: TCP port; 0 picks a free one (read it from :attr:`port`).
        tokens: valid tokens for ``authorize``: a list (each token gets a virtual USD account
            with 10,000) or a dict token -> account fields (``loginid``, ``currency``,
            ``balance``, ``email``, ``fullname``, ``country``, ``scopes``).
        tick_interval: seconds between two ticks of every stream (e.g. 0.01 for 100 ticks/s).
        seed: seed of the random walk of quotes (None: different every run).
        ssl_context: a server-side :class:`ssl.SSLContext` to serve ``wss://``.
        rate_limits: call name -> most requests per minute per connection; beyond it the
            request gets Deriv's ``RateLimit`` error.

    Connections whose URL has no numeric ``app_id`` query parameter complete the handshake,
    then every request gets Deriv's ``InvalidAppID`` error and, after the first such answer,
    the server closes the connection with code 1008.

    Fault controls (any thread, any time): :meth:`drop`, :meth:`close_all`, :meth:`stall` /
    :meth:`resume`, :meth:`delay`, :meth:`send_malformed`, :meth:`refuse`.

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
    ) -> None:
        if tick_interval <= 0:
            raise ValueError("tick_interval must be positive")
        self.host = host
        self.port = port
        self.tick_interval = float(tick_interval)
        self.ssl_context = ssl_context
        self.rate_limits: dict[str, int] = dict(rate_limits or {})
        if any(not isinstance(v, int) or v < 1 for v in self.rate_limits.values()):
            raise ValueError("rate_limits values must be positive integers")
        # State shared by handlers and the scheduler, guarded by ``lock``.
        self.lock = threading.RLock()
        self.market = Market(seed)
        self.accounts: dict[str, Account] = make_accounts(tokens)
        self.accounts_by_login = {a.loginid: a for a in self.accounts.values()}
        self.contracts: dict[int, Contract] = {}
        self.proposals: dict[str, ProposalEntry] = {}
        self._sessions: set[Session] = set()
        # Requests and fault settings, guarded by ``_meta``.
        self._meta = threading.Lock()
        self._requests: deque[dict[str, Any]] = deque(maxlen=MAX_REQUESTS)
        self._refuse_count = 0
        self._refuse_status = 503
        self._delay = 0.0
        self._running = threading.Event()  # cleared while stalled
        self._running.set()
        self._stopping = threading.Event()
        self._state = "new"  # new -> started -> stopped
        self._listener: Listener | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``ws://host:port/websockets/v3?app_id=1089&l=EN&brand=deriv`` (``wss://`` with TLS)."""
        scheme = "wss" if self.ssl_context is not None else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/websockets/v3?app_id=1089&l=EN&brand=deriv"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received (decoded JSON objects), in order, across connections.

        A copy, safe to read from any thread; the last :data:`MAX_REQUESTS` are kept.
        """
        with self._meta:
            return list(self._requests)

    def start(self) -> LocalServer:
        """Listen and start the threads; returns once the socket listens. Returns self.

        Raises:
            RuntimeError: when called twice.
            OSError: when the address cannot be bound.
        """
        if self._state != "new":
            raise RuntimeError("a LocalServer can only be started once")
        self._listener = Listener(
            self.host, self.port, self.ssl_context, self._handle, self._process_request
        )
        self.port = self._listener.port
        self._state = "started"
        ticks = threading.Thread(target=self._tick_loop, name="deriv_sdk-server-ticks", daemon=True)
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
        self._stopping.set()
        self._running.set()  # wake the handlers that hold requests: they discard them
        listener = self._listener
        assert listener is not None
        listener.stop_accepting(STOP_TIMEOUT)  # no new connections after this
        listener.abort(handshaking=True)  # clients that connected but never sent a request
        for session in self._sessions_copy():
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
        are discarded, even if :meth:`resume` follows at once.
        """
        for session in self._sessions_copy():
            session.finish()
        if self._listener is not None:
            self._listener.abort(only_open=True)

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
        for session in self._sessions_copy():
            session.request_close(code, reason)

    def stall(self) -> None:
        """Stop answering and sending on every connection (see the class docstring)."""
        self._running.clear()

    def resume(self) -> None:
        """End :meth:`stall`: held requests are answered and streams go on."""
        self._running.set()
        for session in self._sessions_copy():
            session.wake()

    def delay(self, seconds: float) -> None:
        """Delay every message queued from now on by ``seconds`` (0 ends the delay)."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        self._delay = float(seconds)

    def send_malformed(self) -> None:
        """Queue one text frame that is not JSON to every connection."""
        for session in self._sessions_copy():
            session.send_text('{"msg_type": "tick", not json')

    def refuse(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` opening handshakes with HTTP ``status`` instead."""
        with self._meta:
            self._refuse_count = count
            self._refuse_status = status

    # -- internals: connections ----------------------------------------------------------

    def sessions_snapshot(self) -> list[Session]:
        """The open sessions (call with :attr:`lock` held)."""
        return list(self._sessions)

    def _sessions_copy(self) -> list[Session]:
        with self.lock:
            return list(self._sessions)

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        with self._meta:
            if self._refuse_count > 0:
                self._refuse_count -= 1
                return conn.respond(self._refuse_status, "Service Unavailable\n")
        query = parse_qs(urlsplit(request.path).query)
        app_id = query.get("app_id", [""])[0]
        conn.app_id_ok = app_id.isdigit()  # type: ignore[attr-defined]
        return None

    def _handle(self, conn: ServerConnection) -> None:
        """Serve one connection (its ``deriv_sdk-server-conn-N`` thread)."""
        session = Session(
            conn,
            getattr(conn, "number", 0),
            bool(getattr(conn, "app_id_ok", True)),
            lambda: not self._running.is_set(),
            lambda: self._delay,
        )
        with self.lock:
            if self._stopping.is_set():
                return
            self._sessions.add(session)
        assert self._listener is not None
        self._listener.track(session.writer)
        session.writer.start()
        try:
            while True:
                raw = conn.recv()
                self._on_message(session, raw)
        except ConnectionClosed:
            pass
        except Exception:  # a bug: log it, never let it pass silently
            logger.exception("LocalServer: connection %d failed", session.number)
        finally:
            with self.lock:
                self._sessions.discard(session)
                session.streams.clear()
            session.finish()

    def _on_message(self, session: Session, raw: str | bytes) -> None:
        request: Any = None
        problem = None
        if isinstance(raw, bytes):
            problem = "Binary frames are not supported; send JSON text frames."
        else:
            try:
                request = json.loads(raw)
            except ValueError:
                problem = "Input validation failed: the request is not valid JSON."
            else:
                if not isinstance(request, dict):
                    problem = "Input validation failed: the request must be a JSON object."
        if isinstance(request, dict):
            with self._meta:
                self._requests.append(request)
        # stall(): hold the request until resume(); discard it if the connection closes.
        while not self._running.wait(0.2):
            if self._stopping.is_set() or session.closed:
                return
        if session.closed or self._stopping.is_set():
            return
        if problem is not None or not isinstance(request, dict):
            err = envelope.ApiError("InputValidationFailed", problem or "", {})
            session.send(envelope.error(None, {}, err, "error"))
            return
        message = dispatch(self, session, request)
        if message is not None:
            session.send(message)
        if not session.app_id_ok:
            session.request_close(1008, "Invalid app_id", after_queued=True)

    # -- internals: the tick scheduler ---------------------------------------------------

    def _tick_loop(self) -> None:
        interval = self.tick_interval
        next_at = time.monotonic()
        while True:
            if self._stopping.wait(max(0.0, next_at - time.monotonic())):
                return
            now = time.monotonic()
            next_at += interval
            if next_at < now:  # fell behind (a slow machine): skip, do not burst
                next_at = now + interval
            if not self._running.is_set():
                continue
            epoch = int(time.time())
            try:
                with self.lock:
                    for symbol, info in SYMBOLS.items():
                        if not info.is_open:
                            continue
                        quote = self.market.step(symbol, epoch)
                        market_tick(self, symbol, epoch, quote)
                        trading_tick(self, symbol, epoch, quote)
            except Exception:  # a bug: log it and keep the market alive
                logger.exception("LocalServer: tick failed")
