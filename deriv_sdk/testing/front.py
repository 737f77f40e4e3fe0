"""A small HTTP/1.1 front door: read a request head, tell a WebSocket upgrade from a REST call,
read the body, write a response.

websockets' HTTP parser only accepts ``GET``, so the listener reads every request head with
this module first: an upgrade goes to websockets (with the bytes already read), anything else
to the REST handler. Everything is bounded: a head of at most :data:`MAX_HEAD` bytes that must
arrive within :data:`HEAD_TIMEOUT` seconds, a body of at most :data:`MAX_BODY` bytes within
:data:`BODY_TIMEOUT`, and an idle keep-alive connection is closed after
:data:`KEEPALIVE_TIMEOUT`, so a slow or huge request never pins a thread.

Pure socket code, no threads; the functions run on the connection's thread.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

#: Most bytes of a request head (request line and headers).
MAX_HEAD = 16 * 1024
#: Most bytes of a request body.
MAX_BODY = 64 * 1024
#: Seconds for a whole request head to arrive (and for the TLS handshake before it).
HEAD_TIMEOUT = 10.0
#: Seconds for a body to arrive once its head has.
BODY_TIMEOUT = 10.0
#: Seconds an idle keep-alive connection waits for its next request.
KEEPALIVE_TIMEOUT = 15.0


class HttpError(Exception):
    """A request that cannot be served: answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Closed(Exception):
    """The client closed the connection (or said nothing in time) between requests."""


@dataclass
class HttpRequest:
    """One parsed request.

    Attributes:
        method: e.g. ``"POST"``.
        target: the request target as sent (path and query).
        path: the path, without the query.
        query: the decoded query parameters.
        version: ``"HTTP/1.1"`` or ``"HTTP/1.0"``.
        headers: header name (lower case) -> value (repeated headers joined with ", ").
        raw: the head as received (for websockets, on an upgrade).
        body: the body (empty until read).
    """

    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    version: str
    headers: dict[str, str]
    raw: bytes
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None."""
        return self.headers.get(name.lower())

    @property
    def is_upgrade(self) -> bool:
        """Whether this is a WebSocket opening handshake (a GET asking to upgrade)."""
        tokens = {t.strip().lower() for t in (self.header("upgrade") or "").split(",")}
        return self.method == "GET" and "websocket" in tokens

    @property
    def keep_alive(self) -> bool:
        """Whether the client wants the connection kept open after the response."""
        tokens = {t.strip().lower() for t in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass
class HttpResponse:
    """A response to write: ``status``, ``body`` of ``content_type``, extra ``headers``."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def read_head(sock: socket.socket, buffer: bytearray, deadline: float, idle: bool) -> bytes:
    """Read one request head from ``sock`` (``buffer`` holds bytes read before, and keeps the
    bytes after the head).

    Args:
        sock: the connection.
        buffer: bytes received but not used yet; the head is taken out of it.
        deadline: ``time.monotonic()`` by which the whole head must be in; between keep-alive
            requests (``idle``), by which the next request must begin (it then has
            :data:`HEAD_TIMEOUT` from its first byte).
        idle: True between keep-alive requests (stray CRLFs before a request are skipped).

    Raises:
        Closed: the client closed the connection, or sent not a byte by ``deadline``.
        HttpError: 431 for a head over :data:`MAX_HEAD`, 408 for one begun but not in by
            ``deadline``.
    """
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end + 4 > MAX_HEAD or (end < 0 and len(buffer) > MAX_HEAD):
            raise HttpError(431, "Request header fields too large")
        if end >= 0:
            head = bytes(buffer[: end + 4])
            del buffer[: end + 4]
            return head
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if not buffer:  # not a byte in time: close without an answer
                raise Closed()
            raise HttpError(408, "Request timeout")
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue  # the loop raises with the right status
        except OSError:
            raise Closed() from None
        if not data:
            raise Closed()
        buffer += data
        if idle:
            if buffer.strip() == b"":
                del buffer[:]  # stray CRLFs between requests (RFC 9112 section 2.2)
            else:
                idle = False  # a request begins: it has HEAD_TIMEOUT from now
                deadline = time.monotonic() + HEAD_TIMEOUT


def parse_head(head: bytes) -> HttpRequest:
    """Parse a request head (request line and headers, ending with an empty line).

    Raises:
        HttpError: 400 for a malformed head, 505 for an HTTP version other than 1.0/1.1.
    """
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        raise HttpError(400, "Bad request") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise HttpError(400, "Malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, "HTTP version not supported")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise HttpError(400, "Malformed header line")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    split = urlsplit(target)
    return HttpRequest(
        method=method,
        target=target,
        path=split.path or "/",
        query=parse_qs(split.query, keep_blank_values=True),
        version=version,
        headers=headers,
        raw=head,
    )


def read_body(sock: socket.socket, request: HttpRequest, buffer: bytearray) -> None:
    """Read ``request``'s body (``Content-Length`` bytes) into ``request.body``.

    Raises:
        HttpError: 400 for a bad length, 501 for ``Transfer-Encoding`` (not supported),
            413 for a body over :data:`MAX_BODY`, 408 when it is not in within
            :data:`BODY_TIMEOUT`.
        Closed: the client closed the connection before the end of the body.
    """
    if request.header("transfer-encoding") is not None:
        raise HttpError(501, "Transfer-Encoding is not supported; send Content-Length")
    length_text = request.header("content-length")
    if length_text is None:
        return
    if not length_text.isdigit():
        raise HttpError(400, "Invalid Content-Length")
    length = int(length_text)
    if length > MAX_BODY:
        raise HttpError(413, "Request body too large")
    if (request.header("expect") or "").lower() == "100-continue" and len(buffer) < length:
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    deadline = time.monotonic() + BODY_TIMEOUT
    while len(buffer) < length:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HttpError(408, "Request timeout")
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            raise Closed() from None
        if not data:
            raise Closed()
        buffer += data
    request.body = bytes(buffer[:length])
    del buffer[:length]


def write_response(
    sock: socket.socket, response: HttpResponse, keep_alive: bool, head_only: bool = False
) -> None:
    """Send ``response``, with ``Connection: keep-alive`` or ``close`` (no body if
    ``head_only``, the answer to a HEAD request)."""
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Error"
    headers = {
        "Content-Type": response.content_type,
        "Content-Length": str(len(response.body)),
        **response.headers,
        "Connection": "keep-alive" if keep_alive else "close",
    }
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if not head_only:
        data += response.body
    sock.settimeout(BODY_TIMEOUT)  # a client that reads nothing cannot block us forever
    sock.sendall(data)
