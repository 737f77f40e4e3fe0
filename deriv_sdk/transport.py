"""The opening handshake: the only module that imports ``websocket`` (websocket-client).

websocket-client does what it does well: URL parsing, proxy settings from the environment,
the upgrade request's headers and the check of the server's
answer (``Sec-WebSocket-Accept``). The socket I/O is ours, so that the whole opening is
bounded by one deadline (websocket-client applies its timeout per socket operation: a server
trickling its answer one byte at a time could hold it forever) and can be aborted from another
thread in every phase (DNS, TCP, TLS, the HTTP upgrade). After the handshake the socket is
``link.Link``'s. Every websocket-client exception is translated here, once, into
``ConnectError`` (``raise ... from exc``), so none reaches the user.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from base64 import b64encode
from collections.abc import Mapping
from typing import Any

import websocket
from websocket import _handshake as ws_handshake
from websocket import _socket as ws_socket
from websocket import _url as ws_url

from .errors import ConnectError
from .link import shutdown
from .network import network_reason, resolve
from .urls import host_of

__all__ = ["Handshake", "default_context"]


MAX_HEAD = 64 * 1024  # the most bytes of HTTP response head we read before giving up
MAX_BODY = 16 * 1024  # of an error response's body (for Deriv's JSON message)

_context_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def default_context() -> ssl.SSLContext:
    """The verifying TLS context, made once: loading the CA store costs ~20 ms and ~150 KiB,
    too much to pay per connection (an SSLContext is safe to share between threads)."""
    global _context
    with _context_lock:
        if _context is None:
            _context = ssl.create_default_context()
        return _context


class _Aborted(Exception):
    pass


class Handshake:
    """One attempt to open a WebSocket, within one deadline; ``abort()`` ends it early.

    Args:
        url: The ``ws://`` or ``wss://`` URL (it may hold secrets: it never reaches a
            message, only its host does).
        deadline: ``time.monotonic()`` by which DNS, TCP, TLS and the upgrade are done.
        headers: Extra handshake headers.
        ssl_context: The TLS context for ``wss://`` (certificates are always verified
            unless the caller's own context says otherwise).
    """

    def __init__(
        self,
        url: str,
        *,
        deadline: float,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self.deadline = deadline
        self.headers = dict(headers or {})
        self.ssl_context = ssl_context
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None  # the socket being opened, for abort()
        self._aborted = False
        self._wake = threading.Event()  # set by abort() (and by the resolver when done)

    # -- any thread --------------------------------------------------------------------

    def abort(self) -> None:
        """Ends ``run()`` at once, in whatever phase it is."""
        with self._lock:
            self._aborted = True
            sock = self._sock
        self._wake.set()
        shutdown(sock)

    # -- the connecting thread ---------------------------------------------------------------

    def run(self) -> tuple[socket.socket, bytes]:
        """Opens the connection; returns the socket (blocking, ready for frames) and the
        bytes that arrived after the server's HTTP head (frames already sent).

        Raises:
            ConnectError: For any failure (``status`` for an HTTP rejection).
        """
        where = host_of(self.url)
        try:
            return self._run()
        except ConnectError:
            self._close()
            raise
        except _Aborted:
            self._close()
            raise ConnectError(f"cannot connect to {where}: aborted by close()") from None
        except BaseException as exc:
            self._close()
            if self._aborted:
                raise ConnectError(f"cannot connect to {where}: aborted by close()") from exc
            reason = _describe(exc)
            raise ConnectError(f"cannot connect to {where}: {reason}") from exc

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if self._aborted:
            raise _Aborted
        if left <= 0:
            raise TimeoutError("timed out")
        return left

    def _close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _adopt(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            aborted = self._aborted
        if aborted:
            raise _Aborted

    def _run(self) -> tuple[socket.socket, bytes]:
        hostname, port, resource, is_secure = ws_url.parse_url(self.url)
        proxy_host, proxy_port, proxy_auth = ws_url.get_proxy_info(hostname, is_secure)
        if proxy_host:
            addrinfo = self._resolve(proxy_host, int(proxy_port or 80))
        else:
            addrinfo = self._resolve(hostname, port)
        sock = self._connect(addrinfo)
        if proxy_host:
            self._tunnel(sock, hostname, port, proxy_auth)
        if is_secure:
            context = self.ssl_context or default_context()
            sock.settimeout(self._remaining())
            tls = context.wrap_socket(sock, server_hostname=hostname, do_handshake_on_connect=False)
            self._adopt(tls)
            tls.settimeout(self._remaining())
            tls.do_handshake()
            sock = tls
        leftover = self._upgrade(sock, hostname, port, resource)
        self._remaining()  # aborted meanwhile?
        sock.settimeout(None)
        with self._lock:
            self._sock = None  # handed over: no longer ours to close
        return sock, leftover

    def _resolve(self, host: str, port: int) -> list[Any]:
        try:
            return resolve(host, port, self.deadline, self._wake, lambda: self._aborted)
        except ConnectionAbortedError:
            raise _Aborted from None

    def _connect(self, addrinfo: list[Any]) -> socket.socket:
        error: OSError | None = None
        for family, socktype, proto, _, address in addrinfo:
            sock = socket.socket(family, socktype, proto)
            for option in ws_socket.DEFAULT_SOCKET_OPTION:
                with contextlib.suppress(OSError):
                    sock.setsockopt(*option)
            self._adopt(sock)
            try:
                sock.settimeout(self._remaining())
                sock.connect(address)
                return sock
            except (ConnectionRefusedError, OSError) as exc:
                if self._aborted or isinstance(exc, TimeoutError):
                    raise
                error = exc
                self._close()
        raise error or OSError("no address to connect to")

    def _upgrade(self, sock: socket.socket, hostname: str, port: int, resource: str) -> bytes:
        lines, key = ws_handshake._get_handshake_headers(
            resource, self.url, hostname, port, {"header": self.headers}
        )
        sock.settimeout(self._remaining())
        sock.sendall("\r\n".join(lines).encode("utf-8"))
        status, reason, headers, rest = self._read_head(sock, "server")
        if status != 101:
            body = self._read_body(sock, headers, rest)
            raise ConnectError(
                f"cannot connect to {host_of(self.url)}: handshake rejected with HTTP "
                f"{status}{' ' + reason if reason else ''}{_body_message(body)}",
                status=status,
            )
        ok, _ = ws_handshake._validate(headers, key, None)
        if not ok:
            raise ConnectError(
                f"cannot connect to {host_of(self.url)}: the server's upgrade answer is not a "
                "valid WebSocket handshake"
            )
        return rest

    def _tunnel(self, sock: socket.socket, host: str, port: int, auth: Any) -> None:
        """The proxy's ``CONNECT``, its answer read under the attempt's deadline."""
        lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
        if auth and auth[0]:
            secret = f"{auth[0]}:{auth[1]}" if auth[1] else auth[0]
            lines.append(f"Proxy-Authorization: Basic {b64encode(secret.encode()).decode()}")
        sock.settimeout(self._remaining())
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, reason, _, rest = self._read_head(sock, "proxy")
        if status != 200:
            raise websocket.WebSocketProxyException(
                f"CONNECT refused with HTTP {status}{' ' + reason if reason else ''}"
            )
        if rest:  # (the server has nothing to say before our upgrade or TLS hello)
            raise websocket.WebSocketProxyException("data after the CONNECT answer")

    def _read_head(self, sock: socket.socket, who: str) -> tuple[int, str, dict[str, str], bytes]:
        """An HTTP response head, by the deadline: (status, reason, headers, what followed)."""
        head = bytearray()
        while True:
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(head) > MAX_HEAD:
                raise ConnectError(
                    f"cannot connect to {host_of(self.url)}: the {who}'s HTTP head is too long"
                )
            sock.settimeout(self._remaining())
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionResetError(f"the {who} closed the connection during the handshake")
            head += chunk
        status, reason, headers = _parse_head(bytes(head[:end]))
        return status, reason, headers, bytes(head[end + 4 :])

    def _read_body(self, sock: socket.socket, headers: dict[str, str], body: bytes) -> bytes:
        try:
            length = min(int(headers.get("content-length", "0")), MAX_BODY)
        except ValueError:
            return body[:MAX_BODY]
        chunks = bytearray(body)
        with contextlib.suppress(OSError, TimeoutError, _Aborted):
            while len(chunks) < length:
                sock.settimeout(min(self._remaining(), 1.0))
                chunk = sock.recv(length - len(chunks))
                if not chunk:
                    break
                chunks += chunk
        return bytes(chunks[:length])


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        raise ValueError(f"invalid HTTP status line {lines[0][:80]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, parts[2] if len(parts) > 2 else "", headers


def _body_message(body: bytes) -> str:
    """Deriv's message from an error body (``errors[0].message``), else its first line."""
    if not body:
        return ""
    try:
        data = json.loads(body)
        message = data["errors"][0]["message"]
        if isinstance(message, str) and message:
            return f": {message[:200]}"
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    line = body.decode("utf-8", "replace").strip().splitlines()
    return f": {line[0][:100]}" if line and line[0].isprintable() else ""


def _describe(exc: BaseException) -> str:
    """A user-facing reason for a failed connect."""
    if isinstance(exc, websocket.WebSocketTimeoutException):
        return "timed out"
    if isinstance(exc, websocket.WebSocketProxyException):
        return f"proxy error: {exc}"
    if isinstance(exc, ConnectionResetError) and exc.errno is None and exc.args:
        return str(exc)  # ours, naming who closed it
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "the server closed the connection during the handshake"
    if isinstance(exc, (OSError, ssl.SSLError)):
        return network_reason(exc)
    return f"{type(exc).__name__}: {exc}"
