"""The floors: what a minimal hand-written client costs, and what feeder + loopback deliver.

- ``FloorClient``: a raw socket, its own handshake and frame parsing, one thread (the caller's),
  decoding with ``json`` or ``orjson``. It understands exactly what the feeder sends (final
  unmasked text frames, ping, close) and raises on anything else. It reads only while a call
  of the caller's is waiting, routing what arrives by ``req_id``: the reply it waits for is
  returned, a stream's message goes to that stream's listener. No library, no second thread,
  no locks: no real client can be cheaper per message, so it is the floor of every figure.
- ``RawDrainClient``: receives the burst's bytes, counts the frames afterwards, no decoding:
  the feeder and loopback ceiling. It must be far above every real client, or the feeder is
  the bottleneck.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 30.0
READ = 1 << 18


def handshake(url: str) -> socket.socket:
    """Open a plain TCP socket and do a hand-written client handshake (no websocket library)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing after the headers may be swallowed
        if not chunk:
            raise ConnectionError("handshake: connection closed")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake refused: {head[:40]!r}")
    sock.settimeout(None)  # blocking reads: no poll() before every recv()
    return sock


def masked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A final client frame, masked with a fresh random key as RFC 6455 requires."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    key = os.urandom(4)
    masked = int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return header + key + masked.to_bytes(n, "big")


class FloorClient:
    """Minimal one-thread client: hand-written handshake and frame parsing, ``req_id`` routing.

    ``decoder`` is ``"json"`` or ``"orjson"`` (both the decoding and the encoding side).
    """

    def __init__(
        self, threaded: bool = False, message_listener: bool = False, decoder: str = "json"
    ) -> None:
        if threaded:
            raise ValueError("the floor client has one thread: no threads scenario")
        if decoder == "orjson":
            import orjson

            self._loads: Callable[[bytes], Any] = orjson.loads
            self._dumps: Callable[[Any], bytes] = orjson.dumps
        else:
            self._loads = json.loads
            self._dumps = lambda obj: json.dumps(obj).encode()
        self._count = message_listener
        self.messages = 0
        self._ids = itertools.count(1000)
        self._stream_ids = itertools.count(1)
        self._streams: dict[Any, Callable[[Any], None]] = {}
        self._buf = b""
        self._pos = 0
        self._rview = memoryview(bytearray(READ))

    def connect(self, url: str) -> None:
        self.sock = handshake(url)

    def _next(self) -> Any:
        """Read until one whole text message is in, answer pings on the way; return it decoded."""
        buf, pos = self._buf, self._pos
        while True:
            left = len(buf) - pos
            if left >= 2:
                b0, n = buf[pos], buf[pos + 1]
                start = pos + 2
                if n == 126:
                    n = (buf[pos + 2] << 8) | buf[pos + 3] if left >= 4 else 1 << 62
                    start = pos + 4
                elif n == 127:
                    n = struct.unpack_from("!Q", buf, pos + 2)[0] if left >= 10 else 1 << 62
                    start = pos + 10
                end = start + n
                if end <= len(buf):
                    payload = buf[start:end]
                    pos = end
                    if b0 == 0x81:
                        self._buf, self._pos = buf, pos
                        return self._loads(payload)
                    if b0 == 0x89:  # ping
                        self.sock.sendall(masked_frame(payload, 0xA))
                        continue
                    if b0 == 0x88:
                        raise ConnectionError("closed by the server")
                    raise ValueError(f"floor client: unsupported frame 0x{b0:02x}")
            # recv_into one reused buffer: recv(256 KiB) would allocate (and, past malloc's
            # mmap threshold, map and unmap) 256 KiB for every small reply
            got = self.sock.recv_into(self._rview)
            if not got:
                raise ConnectionError("connection closed")
            chunk = self._rview[:got]
            buf = buf[pos:] + chunk if pos < len(buf) else bytes(chunk)
            pos = 0

    def _send(self, obj: Any) -> None:
        self.sock.sendall(masked_frame(self._dumps(obj)))

    def _route(self, data: Any) -> None:
        listener = self._streams.get(data.get("req_id"))
        if listener is not None:
            listener(data)

    def stream(self, on_tick: Callable[[Any], None]) -> None:
        """Reads on the caller's thread: returns after the whole stream (the harness knows)."""
        self._send({"ticks": "R_50", "subscribe": 1, "req_id": 1})
        read = self._next
        while not getattr(on_tick, "finished", False):
            on_tick(read())

    def _wait(self, req_id: int) -> Any:
        read, count = self._next, self._count
        while True:
            data = read()
            if count:
                self.messages += 1
            if data.get("req_id") == req_id:
                return data
            self._route(data)

    def subscribe(self, payload: dict[str, Any], listener: Callable[[Any], None]) -> Any:
        req_id = next(self._stream_ids)
        self._send({**payload, "subscribe": 1, "req_id": req_id})
        first = self._wait(req_id)
        self._streams[req_id] = listener
        listener(first)
        return first

    def request(self, payload: dict[str, Any]) -> Any:
        req_id = next(self._ids)
        self._send({**payload, "req_id": req_id})
        return self._wait(req_id)

    def close(self) -> None:
        try:
            self.sock.sendall(masked_frame(struct.pack("!H", 1000), 0x8))
        except OSError:
            pass
        self.sock.close()


class RawDrainClient:
    """Plain socket, hand-written handshake; receives the burst's bytes, no decoding.

    Shows what the feeder and loopback can deliver: it must be far above every real client.
    Only ``recv_into`` runs while it is timed, from the subscribe request to the last byte
    (walking ~320-byte frames in Python would make it measure itself); the frames are counted
    afterwards, so a short or garbled stream still fails.
    """

    def __init__(self, threaded: bool = False, message_listener: bool = False) -> None:
        self.frames = 0
        self.bytes = 0
        self.first = self.last = self.cpu_first = self.cpu_last = 0.0

    def connect(self, url: str) -> None:
        self.sock = handshake(url)

    def drain(self, size: int) -> None:
        """Receive ``size`` bytes (the whole burst), then count the frames in them."""
        data = bytearray(size)
        view = memoryview(data)
        request = masked_frame(b'{"ticks": "R_50", "subscribe": 1, "req_id": 1}')
        got = 0
        self.first, self.cpu_first = time.perf_counter(), time.process_time()
        self.sock.sendall(request)
        while got < size:
            n = self.sock.recv_into(view[got:])
            if not n:
                break
            got += n
        self.last, self.cpu_last = time.perf_counter(), time.process_time()
        self.bytes = got
        self.frames = count_frames(view[:got])

    def close(self) -> None:
        self.sock.close()


def count_frames(data: memoryview) -> int:
    """The number of whole unmasked frames in ``data``; raises if it does not end on one."""
    pos, size, frames = 0, len(data), 0
    while pos + 2 <= size:
        length = data[pos + 1] & 0x7F
        if length == 126:
            pos += 4 + ((data[pos + 2] << 8) | data[pos + 3])
        elif length == 127:
            pos += 10 + struct.unpack_from("!Q", data, pos + 2)[0]
        else:
            pos += 2 + length
        frames += 1
    if pos != size:
        raise ValueError(f"the data does not end on a frame boundary (frame {frames})")
    return frames
