"""Feeder server for the benchmarks: a minimal Deriv v3 WebSocket server on loopback.

Plain sockets, one thread per connection, a hand-written RFC 6455 handshake and unmasked server
frames, so that the server costs as little as possible per message. Two ways to answer a
``{"ticks": SYMBOL, "subscribe": 1, "req_id": R}`` request:

- burst (``--ticks N``, the stream scenario): ``N`` pre-built ``tick`` messages (about 320
  bytes each, varying quote and epoch, echoing ``R``), sent with one ``sendall`` of a buffer
  built before the server listens (for ``req_id`` 1, the id every benchmark client uses; rebuilt
  on demand for any other id), as fast as the socket takes them;
- paced (``--rate HZ``, the mixed scenario): a stream like Deriv's, ``HZ`` ticks a second for
  as long as the connection lives, each stream with its own subscription id and the request's
  ``req_id`` and ``echo_req``; the first tick is the reply. ``forget`` / ``forget_all`` end
  streams. One thread per connection paces its streams, each on an absolute schedule.

Also: ``{"ping": 1, "req_id": N}`` -> Deriv's ping envelope with ``req_id`` echoed; any other
JSON request -> an empty envelope with ``msg_type`` and ``req_id`` echoed; WebSocket ping ->
pong; close -> close. All writes to one connection go through one lock.

Run: ``python feeder.py [--ticks N | --rate HZ] [--cache DIR]``; it prints ``PORT <n>`` on
stdout once it listens and serves until stdin closes or it is killed. With ``--cache`` the
burst is built once and read back from ``DIR`` by later feeders of the same run.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import heapq
import itertools
import json
import os
import random
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PREBUILT = 1_000  # paced frames built at subscribe time: 10 s at 100 ticks/s
_SUB_ID = "b4d42748-0744-c46b-f59b-cb7dd936bafa"  # from deriv-api/examples/ticks.json
# symbol -> (first quote, pip size), shaped like Deriv's volatility indices
SYMBOLS = {
    "R_10": (6543.217, 3),
    "R_25": (2871.4326, 4),
    "R_50": (218.0926, 4),
    "R_75": (91234.5678, 4),
    "R_100": (1876.54, 2),
}


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """Return one unmasked, final server frame carrying ``payload``."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


def tick_messages(request: dict[str, Any], sub_id: str = _SUB_ID, seed: int = 7) -> Iterator[bytes]:
    """Endless realistic Deriv ``tick`` messages (JSON bytes) answering ``request``."""
    rng = random.Random(seed)
    symbol = str(request.get("ticks", "R_100"))
    quote, pip = SYMBOLS.get(symbol, SYMBOLS["R_50"])
    step = 10.0**-pip
    epoch = 1587547610
    head: dict[str, Any] = {"echo_req": request, "msg_type": "tick"}
    if "req_id" in request:
        head["req_id"] = request["req_id"]
    head["subscription"] = {"id": sub_id}
    while True:
        quote = round(quote + rng.uniform(-500, 500) * step, pip)
        epoch += 2
        tick = {
            "ask": round(quote + 100 * step, pip),
            "bid": round(quote - 100 * step, pip),
            "epoch": epoch,
            "id": sub_id,
            "pip_size": pip,
            "quote": quote,
            "symbol": symbol,
        }
        yield json.dumps({**head, "tick": tick}).encode()


def tick_payloads(count: int, req_id: int = 1, seed: int = 7) -> list[bytes]:
    """Return ``count`` tick messages of the burst stream (about 320 bytes each)."""
    messages = tick_messages({"req_id": req_id, "subscribe": 1, "ticks": "R_50"}, seed=seed)
    return [next(messages) for _ in range(count)]


def tick_stream(count: int, req_id: int = 1) -> bytes:
    """Return ``count`` tick messages as one buffer of ready-to-send server frames."""
    return b"".join(frame(p) for p in tick_payloads(count, req_id))


def _cached_stream(count: int, cache: str) -> bytes:
    """The ``req_id`` 1 burst, from ``cache`` (a directory) when an earlier feeder left it."""
    if not cache:
        return tick_stream(count, 1)
    path = Path(cache) / f"ticks-{count}.bin"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        data = tick_stream(count, 1)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        partial.replace(path)  # atomic: a reader never sees half a file
        return data


class _Conn:
    """One client connection: handshake, then read masked client frames and answer them."""

    def __init__(self, server: Feeder, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.buf = bytearray()
        self.send_lock = threading.Lock()
        self.closed = threading.Event()
        self.streams: dict[str, threading.Event] = {}  # subscription id -> stop
        self.pacer: _Pacer | None = None
        self.rng = random.Random()

    def run(self) -> None:
        try:
            if self._handshake():
                self._loop()
        except OSError:
            pass
        finally:
            self.closed.set()
            self.sock.close()

    def send(self, data: bytes) -> None:
        with self.send_lock:
            self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def _handshake(self) -> bool:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return False
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        key = b""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        return True

    def _read_frame(self) -> tuple[bool, int, bytes] | None:
        """Return (fin, opcode, unmasked payload) of the next client frame, None at EOF."""
        while True:
            buf = self.buf
            if len(buf) >= 2:
                fin = bool(buf[0] & 0x80)
                opcode = buf[0] & 0x0F
                masked = buf[1] & 0x80
                n = buf[1] & 0x7F
                pos = 2
                if n == 126 and len(buf) >= 4:
                    n = struct.unpack_from("!H", buf, 2)[0]
                    pos = 4
                elif n == 127 and len(buf) >= 10:
                    n = struct.unpack_from("!Q", buf, 2)[0]
                    pos = 10
                if n < 126 or pos > 2:
                    mask_len = 4 if masked else 0
                    end = pos + mask_len + n
                    if len(buf) >= end:
                        payload = bytes(buf[pos + mask_len : end])
                        if masked:
                            mask = (bytes(buf[pos : pos + 4]) * (n // 4 + 1))[:n]
                            as_int = int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")
                            payload = as_int.to_bytes(n, "big")
                        del buf[:end]
                        return fin, opcode, payload
            if not self._fill():
                return None

    def _loop(self) -> None:
        message = bytearray()
        while True:
            got = self._read_frame()
            if got is None:
                return
            fin, opcode, payload = got
            if opcode == 0x8:  # close: echo the code back, then hang up
                self.send(frame(payload[:2], 0x8))
                return
            if opcode == 0x9:
                self.send(frame(payload, 0xA))
            elif opcode in (0x1, 0x2, 0x0):
                message += payload
                if fin:
                    self._answer(bytes(message))
                    message.clear()

    def _answer(self, raw: bytes) -> None:
        request = json.loads(raw)
        req_id = request.get("req_id")
        if "ticks" in request:
            if self.server.rate:
                self._start_paced(request)
            else:
                self.send(self.server.stream_for(req_id or 1))
            return
        if "ping" in request:
            reply: dict[str, Any] = {"echo_req": request, "msg_type": "ping", "ping": "pong"}
        elif "forget" in request:
            stop = self.streams.pop(str(request["forget"]), None)
            if stop is not None:
                stop.set()
            reply = {"echo_req": request, "msg_type": "forget", "forget": int(stop is not None)}
        elif "forget_all" in request:
            ids = list(self.streams)
            for sub_id in ids:
                self.streams.pop(sub_id).set()
            reply = {"echo_req": request, "msg_type": "forget_all", "forget_all": ids}
        else:
            msg_type = next(iter(request), "unknown")
            reply = {"echo_req": request, "msg_type": msg_type, msg_type: 1}
        if req_id is not None:
            reply["req_id"] = req_id
        self.send(frame(json.dumps(reply, separators=(",", ":")).encode()))

    def _start_paced(self, request: dict[str, Any]) -> None:
        sub_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
        stop = self.streams[sub_id] = threading.Event()
        messages = tick_messages(request, sub_id, self.rng.getrandbits(32))
        self.send(frame(next(messages)))  # Deriv's reply to a ticks subscribe is the first tick
        frames = [frame(next(messages)) for _ in range(PREBUILT)]  # no JSON work while pacing
        more = (frame(m) for m in messages)  # a long run goes on with frames built as needed
        if self.pacer is None:
            self.pacer = _Pacer(self, 1.0 / self.server.rate)
        self.pacer.add(itertools.chain(frames, more), stop)


class _Pacer:
    """One thread sending every paced stream of a connection, each on an absolute schedule.

    Stream k starts at phase frac(k * 0.618) of the period, so the streams' ticks are spread
    over the period instead of arriving together (as different symbols do at Deriv).
    """

    def __init__(self, conn: _Conn, period: float) -> None:
        self.conn = conn
        self.period = period
        self.cond = threading.Condition()
        self.heap: list[tuple[float, int, Iterator[bytes], threading.Event]] = []
        self.added = 0
        threading.Thread(target=self._run, daemon=True).start()

    def add(self, frames: Iterator[bytes], stop: threading.Event) -> None:
        with self.cond:
            phase = (self.added * 0.618) % 1.0
            due = time.monotonic() + self.period * (1 + phase)
            heapq.heappush(self.heap, (due, self.added, frames, stop))
            self.added += 1
            self.cond.notify()

    def _run(self) -> None:
        closed, cond, heap = self.conn.closed, self.cond, self.heap
        try:
            while not closed.is_set():
                with cond:
                    if not heap:
                        cond.wait(0.1)
                        continue
                    due, n, frames, stop = heap[0]
                    now = time.monotonic()
                    if due > now:
                        cond.wait(due - now)
                        continue
                    heapq.heappop(heap)
                    if stop.is_set():
                        continue
                    # stalled (a client that stopped reading): no catch-up burst afterwards
                    due = max(due + self.period, now - self.period)
                    heapq.heappush(heap, (due, n, frames, stop))
                self.conn.send(next(frames))
        except OSError:
            return


class Feeder:
    """Thread-per-connection loopback server; ``start()`` binds and returns the port."""

    def __init__(
        self, ticks: int = 0, rate: float = 0.0, host: str = "127.0.0.1", cache: str = ""
    ) -> None:
        self.ticks = ticks
        self.rate = rate
        self.host = host
        self._streams: dict[int, bytes] = {}
        self._lock = threading.Lock()
        if ticks and not rate:
            self._streams[1] = _cached_stream(ticks, cache)
        self._listener = socket.create_server((host, 0), backlog=512)
        self.port: int = self._listener.getsockname()[1]

    def stream_for(self, req_id: int) -> bytes:
        with self._lock:
            if req_id not in self._streams:
                self._streams[req_id] = tick_stream(self.ticks, req_id)
            return self._streams[req_id]

    def serve_forever(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(self, sock)
            threading.Thread(target=conn.run, daemon=True).start()

    def start(self) -> int:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self.port

    def stop(self) -> None:
        self._listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=0, help="burst: tick messages per subscribe")
    parser.add_argument("--rate", type=float, default=0.0, help="paced: ticks/s per subscription")
    parser.add_argument("--cache", default="", help="a directory to keep the built burst in")
    args = parser.parse_args()
    feeder = Feeder(args.ticks, args.rate, cache=args.cache)
    feeder.start()
    print(f"PORT {feeder.port}", flush=True)
    sys.stdin.read()  # serve until the runner closes our stdin (or kills us)


if __name__ == "__main__":
    main()
