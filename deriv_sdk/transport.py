"""The wire: the only module that imports ``websocket`` (websocket-client).

websocket-client does what it does well: URL parsing, DNS, proxies, TLS and the HTTP
upgrade handshake. After the handshake we own the socket: frames are parsed by
``frames.FrameParser`` from large buffered reads and built by ``frames.encode_frame``.
Every websocket-client exception is translated here, once, into ``ConnectError``
(``raise ... from exc``), so none reaches the user.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any

import websocket

from .errors import ConnectError, ConnectionClosedError
from .frames import OP_CLOSE, encode_close_payload, encode_frame

__all__ = ["Handshake", "Link"]

logger = logging.getLogger("deriv_sdk.transport")

RECV_SIZE = 256 * 1024
FIRST_RECV_SIZE = 16 * 1024


_context_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def _default_context() -> ssl.SSLContext:
    """The verifying TLS context, made once: loading the CA store costs ~20 ms and ~150 KiB,
    too much to pay per connection (an SSLContext is safe to share between threads)."""
    global _context
    with _context_lock:
        if _context is None:
            _context = ssl.create_default_context()
        return _context


def _describe(exc: BaseException) -> tuple[str, int | None]:
    """A user-facing reason for a failed connect, and the HTTP status if there was one."""
    if isinstance(exc, websocket.WebSocketBadStatusException):
        status = int(exc.status_code)
        text = f" {exc.status_message}" if exc.status_message else ""
        return f"handshake rejected with HTTP {status}{text}", status
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message or exc}", None
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc}", None
    if isinstance(exc, (socket.timeout, websocket.WebSocketTimeoutException)):
        return "timed out", None
    if isinstance(exc, websocket.WebSocketAddressException):
        return f"cannot resolve the host: {exc}", None
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused", None
    if isinstance(exc, (websocket.WebSocketConnectionClosedException, ConnectionResetError)):
        return "the server closed the connection during the handshake", None
    return f"{type(exc).__name__}: {exc}", None


class Handshake:
    """One attempt to open a WebSocket; ``abort()`` from another thread ends it early.

    Args:
        url: The ``ws://`` or ``wss://`` URL.
        timeout: Seconds for DNS, TCP, TLS and the HTTP upgrade together (per step).
        headers: Extra handshake headers.
        ssl_context: The TLS context for ``wss://`` (certificates are always verified
            unless the caller's own context says otherwise).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.headers = dict(headers or {})
        sslopt = None
        if url.startswith("wss://"):
            sslopt = {"context": ssl_context if ssl_context is not None else _default_context()}
        # websocket-client is untyped: keep it behind Any, at this one boundary.
        self._ws: Any = websocket.WebSocket(sslopt=sslopt, skip_utf8_validation=True)
        self._aborted = threading.Event()

    def run(self) -> socket.socket:
        """Opens the connection; returns the socket, blocking, ready for frames.

        Raises:
            ConnectError: For any failure (with ``status`` for an HTTP rejection).
        """
        try:
            self._ws.connect(self.url, timeout=self.timeout, header=self.headers)
        except Exception as exc:
            self._ws.shutdown()
            if self._aborted.is_set():
                raise ConnectError("connect aborted by close()") from exc
            reason, status = _describe(exc)
            host = self.url.split("//", 1)[-1].split("/", 1)[0]
            raise ConnectError(f"cannot connect to {host}: {reason}", status=status) from exc
        sock: socket.socket = self._ws.sock
        if self._aborted.is_set():
            self._ws.shutdown()
            raise ConnectError("connect aborted by close()")
        sock.settimeout(None)
        return sock

    def abort(self) -> None:
        """Wakes a ``run()`` blocked in the HTTP upgrade (DNS, TCP connect and the TLS
        handshake are bounded by the timeout only)."""
        self._aborted.set()
        # Not websocket-client's abort(): it does nothing until the upgrade has succeeded.
        sock = self._ws.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Link:
    """An open WebSocket after the handshake: sends frames, reads raw bytes.

    ``send_frame`` is safe from any thread (one send lock); ``recv`` belongs to the reader
    thread; ``abort`` from any thread wakes a blocked ``recv``.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()
        self._buffer = bytearray(FIRST_RECV_SIZE)
        self._view = memoryview(self._buffer)
        self.closed = False

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """Sends one whole frame.

        Raises:
            ConnectionClosedError: The socket is closed or broke while sending.
        """
        frame = encode_frame(opcode, payload)
        try:
            with self._send_lock:
                self._sock.sendall(frame)
        except (OSError, ValueError) as exc:
            raise ConnectionClosedError(f"send failed: {exc}") from exc

    def send_close(self, code: int, reason: str, wait: float = 1.0) -> None:
        """Sends a close frame; errors are ignored (the link may be gone already).

        When another send holds the lock for ``wait`` seconds (a peer that stopped reading),
        the socket is shut down instead, which also wakes that blocked send.
        """
        frame = encode_frame(OP_CLOSE, encode_close_payload(code, reason))
        if not self._send_lock.acquire(timeout=wait):
            self.abort()
            return
        try:
            # The frame is small: once the socket is writable it goes out without blocking.
            # A full send buffer (a peer that stopped reading) gets the socket shut instead.
            deadline = time.monotonic() + wait
            with selectors.DefaultSelector() as selector:
                selector.register(self._sock, selectors.EVENT_WRITE)
                # In slices: the io thread may close the socket meanwhile, and a closed
                # descriptor silently leaves the selector.
                while not self.closed and not selector.select(0.05):
                    if time.monotonic() > deadline:
                        self.abort()
                        return
            if not self.closed:
                self._sock.sendall(frame)
        except (OSError, ValueError):
            pass
        finally:
            self._send_lock.release()

    def recv(self) -> bytes:
        """Reads what has arrived (up to 256 KiB); ``b""`` once the peer or abort() ended it."""
        try:
            n = self._sock.recv_into(self._buffer)
        except (OSError, ValueError) as exc:
            logger.debug("recv ended: %r", exc)
            return b""
        # Copies only what arrived: recv(RECV_SIZE) would allocate 256 KiB per call.
        data = self._view[:n].tobytes()
        if n == len(self._buffer) < RECV_SIZE:
            # A full read: this link streams. Grow, so one read takes hundreds of frames
            # (an idle or request-response link keeps the small buffer and its memory).
            self._buffer = bytearray(RECV_SIZE)
            self._view = memoryview(self._buffer)
        return data

    def abort(self) -> None:
        """Shuts the socket down: a blocked ``recv`` returns at once. Safe from any thread."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Releases the socket. Idempotent."""
        if not self.closed:
            self.closed = True
            self.abort()
            self._sock.close()
