"""A raw TCP/WebSocket server on 127.0.0.1 for the tests of what a faithful server never does:
trickled or endless handshakes, silence during TLS, hostile frames, a peer that stops reading.

Each accepted connection runs ``script(peer)`` on its own thread; ``Peer`` has the small
helpers a script needs (read the upgrade request, answer it, send and read frames). Frames
are built here independently of deriv_sdk.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = None) -> bytes:
    """A server frame (unmasked unless ``mask``)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    mbit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def text(data: Any) -> bytes:
    """A text frame of ``data`` (JSON-encoded unless bytes or str)."""
    if isinstance(data, bytes):
        return frame(OP_TEXT, data)
    if not isinstance(data, str):
        data = json.dumps(data)
    return frame(OP_TEXT, data.encode())


class Peer:
    """One accepted connection, seen from the server."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.frames: list[tuple[int, bytes]] = []  # client frames read so far

    def read_head(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("the client went away during the handshake")
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head

    def accept(self) -> None:
        """Reads the upgrade request and answers 101."""
        head = self.read_head()
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> tuple[int, bytes]:
        """The next client frame (unmasked), or (-1, b"") at EOF."""
        while True:
            parsed = self._parse()
            if parsed is not None:
                self.frames.append(parsed)
                return parsed
            data = self.sock.recv(65536)
            if not data:
                return -1, b""
            self.buffer += data

    def read_json(self) -> Any:
        """The next client text frame, decoded (control frames are answered or skipped)."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == -1:
                raise ConnectionError("EOF")
            if opcode == OP_TEXT:
                return json.loads(payload)

    def _parse(self) -> tuple[int, bytes] | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        opcode, n, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                return None
            n, pos = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, pos = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < pos + 4 + n:
            return None
        key = buf[pos : pos + 4]
        data = buf[pos + 4 : pos + 4 + n]
        self.buffer = buf[pos + 4 + n :]
        return opcode, bytes(b ^ key[i % 4] for i, b in enumerate(data))


class RawServer:
    """Accepts connections and runs ``script(peer)`` for each on a daemon thread.

    Args:
        script: What to do with each connection (returning closes it).
        backlog: The listen backlog.
        rcvbuf: SO_RCVBUF of the accepted sockets (small: the window fills fast).
        tls: Wrap accepted sockets in TLS with this server context (None: plain TCP).
        accept: False: never accept (with backlog 0, connects hang in the TCP handshake
            once the queue is full).
    """

    def __init__(
        self,
        script: Callable[[Peer], None],
        backlog: int = 16,
        rcvbuf: int | None = None,
        tls: ssl.SSLContext | None = None,
        accept: bool = True,
    ) -> None:
        self.script = script
        self.tls = tls
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.peers: list[Peer] = []
        self.accepted = threading.Semaphore(0)
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._accepting = accept
        self._thread = threading.Thread(target=self._serve, name="raw-server", daemon=True)
        if accept:
            self._thread.start()

    @property
    def url(self) -> str:
        scheme = "wss" if self.tls is not None else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/websockets/v3?app_id=1089"

    def wait_accepted(self, timeout: float = 5.0) -> bool:
        return self.accepted.acquire(timeout=timeout)

    def _serve(self) -> None:
        while not self._closed:
            try:
                sock, _ = self.sock.accept()
            except OSError:
                return
            peer = Peer(sock)
            self.peers.append(peer)
            thread = threading.Thread(target=self._run, args=(peer,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, peer: Peer) -> None:
        self.accepted.release()
        try:
            if self.tls is not None:
                peer.sock = self.tls.wrap_socket(peer.sock, server_side=True)
            self.script(peer)
        except (OSError, ConnectionError, ssl.SSLError):
            pass
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                peer.sock.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for peer in list(self.peers):
            with contextlib.suppress(OSError):
                peer.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                peer.sock.close()
        if self._accepting:
            self._thread.join(5)
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def deriv_pong(request: dict[str, Any]) -> dict[str, Any]:
    """Deriv's answer to ``{"ping": 1}``."""
    return {"echo_req": request, "msg_type": "ping", "ping": "pong", "req_id": request["req_id"]}


def random_mask() -> bytes:
    return os.urandom(4)


class SlowProxy:
    """A TCP proxy to ``port`` on 127.0.0.1 that holds the server's first bytes (its
    handshake answer) for ``delays[i]`` seconds on the i-th connection (0 when absent)."""

    def __init__(self, port: int, delays: dict[int, float]) -> None:
        self.target = port
        self.delays = delays
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, name="slow-proxy", daemon=True)
        self._thread.start()

    def url(self, path: str = "/websockets/v3?app_id=1089") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            delay = self.delays.get(self.count, 0.0)
            self.count += 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self._socks += [client, upstream]
            for src, dst, wait in ((client, upstream, 0.0), (upstream, client, delay)):
                thread = threading.Thread(target=self._pipe, args=(src, dst, wait), daemon=True)
                self._threads.append(thread)
                thread.start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, wait: float) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if wait:
                    time.sleep(wait)
                    wait = 0.0
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(5)
        for thread in self._threads:
            thread.join(5)
