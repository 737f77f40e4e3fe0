"""``RestClient``: Deriv's new API over REST (accounts, one-time WebSocket URLs, health).

The standard library's ``http.client``, one HTTPS connection per call (so the client is safe
from any thread and keeps no socket between calls), TLS always verified, one total deadline
for every call (DNS, TCP, TLS, sending, the whole answer). Every request carries
``Authorization: Bearer <token>`` and ``Deriv-App-ID``; the token (or the callable that
returns it) never appears in a log record, a ``repr()`` or an exception text, and neither
does a one-time URL.

Errors: an HTTP error reply raises ``RestError`` (Deriv's ``errors[0]``); a network failure,
a timeout or a TLS error raises ``ConnectError``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from .errors import ConnectError, RestError
from .network import network_reason, resolve
from .urls import check_ws_url, redact

__all__ = ["DEFAULT_BASE_URL", "Cancel", "RestClient"]

logger = logging.getLogger("deriv_sdk.rest")

DEFAULT_BASE_URL = "https://api.derivws.com"
ACCOUNTS = "/trading/v1/options/accounts"
HEALTH = "/v1/health"
MAX_BODY = 4 * 1024 * 1024


class Cancel:
    """Lets another thread end a call in flight: ``abort()`` shuts its socket down (the
    call raises ``ConnectError``, in whatever phase: DNS, TCP, TLS, the answer), and any later
    call with this token fails at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._call: _Call | None = None
        self.aborted = False

    def _bind(self, call: _Call | None) -> bool:
        with self._lock:
            self._call = call
            return not self.aborted

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            call = self._call
        if call is not None:
            call.cut()


class _Call:
    """One call's sockets, its total deadline, and whether it was cut (a watchdog thread cuts
    it at the deadline: ``http.client`` applies its timeout per socket operation).

    Each connected socket is kept as a duplicate: TLS wrapping detaches the original, and
    ``http.client`` lets go of its socket once a ``Connection: close`` answer's headers are
    read, but a shutdown through the duplicate still ends the read (same socket, other fd).
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.wake = threading.Event()  # the name lookup's (see network.resolve)
        self.lock = threading.Lock()
        self.socks: list[socket.socket] = []
        self.dups: list[socket.socket] = []
        self.cut_down = False

    def close(self) -> None:
        with self.lock:
            for sock in self.dups:
                sock.close()
            self.dups, self.socks = [], []

    def cut(self) -> None:
        self.wake.set()
        with self.lock:  # (held: close() cannot free a descriptor under a shutdown)
            self.cut_down = True
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def create_connection(
        self, address: tuple[str, int], timeout: float, source_address: Any = None
    ) -> socket.socket:
        """``http.client``'s ``_create_connection``: each socket registered before it
        connects, so that ``cut()`` ends a connect in progress too."""
        host, port = address
        error: OSError | None = None
        for family, socktype, proto, _, where in resolve(
            host, port, self.deadline, self.wake, lambda: self.cut_down
        ):
            sock = socket.socket(family, socktype, proto)
            with self.lock:
                if self.cut_down:
                    sock.close()
                    raise ConnectionAbortedError("aborted")
                self.socks.append(sock)
            try:
                sock.settimeout(max(0.001, min(timeout, self.deadline - time.monotonic())))
                sock.connect(where)
                with self.lock:
                    # From now on only the duplicate is shut down: http.client may close
                    # the original at any time, and its descriptor could then be reused.
                    self.dups.append(sock.dup())
                    self.socks.remove(sock)
                    self.socks.append(self.dups[-1])
                    cut = self.cut_down
                if cut:
                    raise ConnectionAbortedError("aborted")
                return sock
            except OSError as exc:
                error = exc
                with self.lock:
                    self.socks.remove(sock)
                    sock.close()
                if self.cut_down:
                    raise
        raise error or OSError("no address to connect to")


class RestClient:
    """A client of Deriv's new REST API.

    Args:
        app_id: The app id from Deriv's developer dashboard (a string; ``Deriv-App-ID``).
        token: A Personal Access Token or an OAuth2 access token, or a zero-argument
            callable returning the current one (called for every request: an OAuth app
            refreshes its token there).
        base_url: ``https://api.derivws.com`` (``http://`` is accepted for a local server).
        timeout: Each call's total deadline in seconds (DNS, TCP, TLS, sending, the answer).
        ssl_context: The TLS context (default: verifying, the system's CA store).

    Raises:
        ValueError: An empty app id or token, or a base URL that is not http(s).
    """

    def __init__(
        self,
        app_id: str | int,
        token: str | Callable[[], str],
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if isinstance(app_id, bool) or not str(app_id).strip():
            raise ValueError("app_id must be a non-empty string")
        if not callable(token) and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty str or a callable returning one")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http:// or https:// URL")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.app_id = str(app_id)
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self._token = token
        self._secure = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._where = parts.netloc.rpartition("@")[2]  # host[:port], never a userinfo
        self._prefix = parts.path.rstrip("/")
        self._context = ssl_context

    def __repr__(self) -> str:
        return f"<RestClient {self.base_url} app_id={self.app_id!r}>"

    # -- the calls ----------------------------------------------------------------------------

    def accounts(self) -> list[dict[str, Any]]:
        """``GET /trading/v1/options/accounts``: the token's options accounts."""
        data = self._call("GET", ACCOUNTS)
        if not isinstance(data, list):
            raise RestError(200, None, "the accounts answer has no list", retryable=True)
        return [a for a in data if isinstance(a, dict)]

    def create_account(
        self, account_type: str = "demo", currency: str = "USD", group: str = "row"
    ) -> dict[str, Any]:
        """``POST /trading/v1/options/accounts``: the existing account of that type (Deriv
        answers 200) or the new one (201, a one-item list): always one dict here."""
        body = {"account_type": account_type, "currency": currency, "group": group}
        data = self._call("POST", ACCOUNTS, body)
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0]
        if isinstance(data, dict):
            return data
        raise RestError(200, None, "the create-account answer has no account", retryable=True)

    def reset_demo_balance(self, account_id: str) -> dict[str, Any]:
        """``POST .../accounts/{account_id}/reset-demo-balance`` (back to 10,000 USD)."""
        data = self._call("POST", f"{ACCOUNTS}/{_segment(account_id)}/reset-demo-balance")
        return data if isinstance(data, dict) else {}

    def otp_url(
        self, account_id: str, timeout: float | None = None, *, cancel: Cancel | None = None
    ) -> str:
        """``POST .../accounts/{account_id}/otp``: a fresh one-time WebSocket URL (valid
        120 s, usable once). Never logged.

        Args:
            account_id: The account.
            timeout: Seconds for this call (default: the client's ``timeout``).
            cancel: Lets another thread end the call (``Connection.close()`` does).
        """
        path = f"{ACCOUNTS}/{_segment(account_id)}/otp"
        data = self._call("POST", path, timeout=timeout, cancel=cancel)
        url = data.get("url") if isinstance(data, dict) else None
        try:
            return check_ws_url(url)
        except (TypeError, ValueError):
            raise RestError(
                200, None, "the one-time password answer has no WebSocket URL", retryable=True
            ) from None

    def health(self) -> bool:
        """``GET /v1/health``: True when Deriv says OK, False for 503 (never raises for it)."""
        try:
            self._call("GET", HEALTH)
        except RestError as exc:
            if exc.status == 503:
                return False
            raise
        return True

    # -- the one path -------------------------------------------------------------------------

    def _headers(self, body: bytes | None) -> dict[str, str]:
        token = self._token() if callable(self._token) else self._token
        if not isinstance(token, str) or not token.strip():
            raise ValueError("the token callable returned no token")
        token = token.strip()  # (a token read from a file keeps its newline)
        if not token.isprintable() or " " in token or not token.isascii():
            # Never in the message: it is the token.
            raise ValueError(
                "the token contains spaces, control or non-ASCII characters (not shown)"
            )
        headers = {
            "Accept": "application/json",
            "Authorization": f"Bearer {token}",
            "Deriv-App-ID": self.app_id,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def _connection(self, timeout: float, call: _Call) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._secure:
            context = self._context or _default_context()
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=context
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        conn._create_connection = call.create_connection  # type: ignore[attr-defined]
        return conn

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        cancel: Cancel | None = None,
    ) -> Any:
        """One request; returns the envelope's ``data`` (None for a body that is not JSON).

        ``timeout`` (default: the client's) bounds the whole call: DNS, TCP, TLS, sending and
        the answer. ``cancel`` lets another thread end it.
        """
        seconds = self.timeout if timeout is None else max(0.001, timeout)
        payload = None if body is None else json.dumps(body).encode()
        headers = self._headers(payload)
        started = time.monotonic()
        call = _Call(started + seconds)
        watchdog = threading.Timer(seconds, call.cut)
        watchdog.name = "deriv_sdk-rest-deadline"
        watchdog.daemon = True
        conn = self._connection(seconds, call)
        try:
            if cancel is not None and not cancel._bind(call):
                raise ConnectionAbortedError("aborted")
            watchdog.start()
            conn.request(method, self._prefix + path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read(MAX_BODY)
            status = response.status
            reason = response.reason
            if call.cut_down and response.length != 0:
                # Cut short (a read ended by the shutdown looks like a short answer); an
                # answer read whole just before the deadline stands.
                raise TimeoutError("timed out")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            why = network_reason(exc) if isinstance(exc, OSError) else type(exc).__name__
            if call.cut_down:
                aborted = cancel is not None and cancel.aborted
                why = "aborted by close()" if aborted else f"timed out after {seconds:g}s"
            # (from None: a header error's text would show the token)
            raise ConnectError(
                f"cannot reach {self._where}: {why} ({method} {_shown(path)})"
            ) from (exc if isinstance(exc, OSError) else None)
        finally:
            watchdog.cancel()
            if watchdog.is_alive():
                watchdog.join()
            if cancel is not None:
                cancel._bind(None)
            conn.close()
            call.close()
        took = (time.monotonic() - started) * 1000
        logger.debug("REST %s %s -> %d (%.0f ms)", method, _shown(path), status, took)
        data = _json(raw)
        if status >= 400:
            raise _rest_error(status, reason, data)
        return data.get("data") if isinstance(data, dict) else None


_context_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def _default_context() -> ssl.SSLContext:
    global _context
    with _context_lock:
        if _context is None:
            _context = ssl.create_default_context()
        return _context


def _segment(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("account_id must be a non-empty str")
    return quote(value, safe="")


def _shown(path: str) -> str:
    return redact(path) or path


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _rest_error(status: int, reason: str, data: Any) -> RestError:
    errors = data.get("errors") if isinstance(data, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(first, dict):
        return RestError(status, None, reason or f"HTTP {status}")
    code = first.get("code")
    message = first.get("message")
    field = first.get("field")
    return RestError(
        status,
        code if isinstance(code, str) else None,
        message if isinstance(message, str) and message else reason or f"HTTP {status}",
        field if isinstance(field, str) else None,
    )
