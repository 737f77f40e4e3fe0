"""An open WebSocket link after the handshake: frames out, raw bytes in.

No websocket-client here: after the handshake we own the socket. Frames are built by
``frames.encode_frame`` and parsed by the reader (``frames.FrameParser``) from large
buffered reads, which is what makes the receive path fast (see the project's PERFORMANCE
notes).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import select
import selectors
import socket
import threading
import time

from .errors import ConnectionClosedError
from .frames import OP_CLOSE, OP_PING, OP_PONG, encode_close_payload, encode_frame

__all__ = ["Link", "shutdown"]

logger = logging.getLogger("deriv_sdk.link")

_CONTROL_AFTER_CLOSE = (OP_PING, OP_PONG)
RECV_SIZE = 256 * 1024
FIRST_RECV_SIZE = 4 * 1024
CLOSE_FLUSH_TIMEOUT = 0.5  # how long the reader tries to get its last close frame out


def shutdown(sock: socket.socket | None) -> None:
    """Shuts ``sock`` down from any thread, waking a blocked connect/recv/send/handshake.

    The base class's method on purpose: ``SSLSocket.shutdown`` also drops its TLS object,
    which another thread may be using at that moment.
    """
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Link:
    """An open WebSocket after the handshake: sends frames, reads raw bytes.

    ``send_frame`` is safe from any thread (one send lock) and may block while the peer's
    window is full. ``post`` never blocks: it is how the reader thread sends (pongs, close
    echoes, ``forget`` of abandoned streams) — the frame goes out at once when the lock is
    free and the socket writable, else the next sender or the reader sends it, in order.
    ``recv`` belongs to the reader thread; ``abort`` from any thread wakes a blocked
    ``recv`` or ``send``.

    Args:
        sock: The socket, blocking.
        initial: Bytes already read after the HTTP head.
    """

    def __init__(self, sock: socket.socket, initial: bytes = b"") -> None:
        self._sock = sock
        self._send_lock = threading.Lock()
        # Taken around "is our close frame out?" and queueing a frame, so that no data frame
        # is queued after our close frame (RFC 6455 5.5.1); never held while sending.
        self._post_lock = threading.Lock()
        self._buffer = bytearray(FIRST_RECV_SIZE)
        self._view = memoryview(self._buffer)
        self._initial = initial
        self._deferred: collections.deque[bytes] = collections.deque()
        self._poll: select.poll | None = None
        self.closed = False
        self.close_sent = False  # we sent a close frame: the next one received is the echo
        self.abort_reason = ""  # why abort() was called ("" for none or unknown)

    # -- sending ------------------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """Sends one whole frame (blocking).

        Raises:
            ConnectionClosedError: The socket is closed or broke while sending.
        """
        frame = encode_frame(opcode, payload)
        try:
            with self._send_lock:
                while self._deferred:  # older frames first
                    self._sock.sendall(self._deferred.popleft())
                # Checked after them: one of them may be our close frame, and nothing may
                # follow it (RFC 6455 5.5.1); one queued from now on goes out after ours.
                if self.close_sent:
                    raise ConnectionClosedError("the connection is closing")
                self._sock.sendall(frame)
        except (OSError, ValueError) as exc:
            raise ConnectionClosedError(f"send failed: {exc}") from exc
        if self._deferred:
            self.try_flush()

    def post(self, opcode: int, payload: bytes) -> None:
        """Queues one frame and sends it if that cannot block (see the class docstring).
        Nothing but pings and pongs goes after our close frame (RFC 6455 5.5.1), and only one
        close frame goes out."""
        frame = encode_frame(opcode, payload)
        with self._post_lock:
            if self.close_sent and opcode not in _CONTROL_AFTER_CLOSE:
                return
            if opcode == OP_CLOSE:
                self.close_sent = True
            self._deferred.append(frame)
        self.try_flush()

    @property
    def has_deferred(self) -> bool:
        return bool(self._deferred)

    def try_flush(self) -> bool | None:
        """Sends the queued frames while the socket is writable, without blocking.

        Returns:
            True when nothing is left; False when the socket is not writable (wait for it);
            None when another thread holds the send lock (it sends them after its own frame).
        """
        if not self._send_lock.acquire(blocking=False):
            return None
        try:
            while self._deferred:
                if self.closed or not _writable(self._sock, 0.0):
                    return False
                self._sock.sendall(self._deferred.popleft())
            return True
        except (OSError, ValueError):
            self._deferred.clear()  # the link is gone; the reader will see it
            return True
        finally:
            self._send_lock.release()

    def flush(self, timeout: float) -> None:
        """Reader thread, before closing: sends what is queued, waiting at most ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._deferred and not self.closed:
            done = self.try_flush()
            if done:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if done is False:
                _writable(self._sock, min(left, 0.05))
            else:
                time.sleep(0.005)  # another sender holds the lock and will flush after it
        # An empty queue: a sender may have taken the last frame off it and still be sending
        # it; wait for that (the send lock) too, so that a shutdown after this cannot cut it.
        left = deadline - time.monotonic()
        if left > 0 and self._send_lock.acquire(timeout=left):
            self._send_lock.release()

    def readable(self, timeout: float) -> bool:
        """Reader thread: True as soon as the socket is readable, False after ``timeout``."""
        pending = getattr(self._sock, "pending", None)
        if pending is not None and pending():
            return True  # TLS has decrypted bytes buffered
        try:
            if self._poll is None:  # made once: poll() has no descriptor limit, unlike select()
                self._poll = select.poll()
                self._poll.register(self._sock, select.POLLIN)
            return bool(self._poll.poll(max(0.0, timeout) * 1000.0))
        except (OSError, ValueError):
            return True  # closed: recv() says so

    def wait_readable(self) -> None:
        """Reader thread: blocks until the socket is readable, sending queued frames as soon
        as it is writable (only called while frames are queued and not sendable yet)."""
        pending = getattr(self._sock, "pending", None)
        if pending is not None and pending():
            return  # TLS has decrypted bytes buffered
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            while self._deferred and not self.closed:
                events = selector.select(1.0)
                if any(mask & selectors.EVENT_READ for _, mask in events):
                    return
                if events and self.try_flush() is None:
                    return  # another sender will flush; go back to reading
            return

    def send_close(self, code: int, reason: str, wait: float = 1.0) -> None:
        """Sends our close frame (``close()``); errors are ignored (the link may be gone).

        When the send lock stays taken for ``wait`` seconds, or the socket does not become
        writable (a peer that stopped reading), the socket is shut down instead.
        """
        frame = encode_frame(OP_CLOSE, encode_close_payload(code, reason))
        if not self._send_lock.acquire(timeout=wait):
            self.abort()
            return
        try:
            with self._post_lock:
                if self.close_sent:
                    return  # one close frame only (the reader's went out or is queued)
                self.close_sent = True
            deadline = time.monotonic() + wait
            # In slices: the reader may close the socket meanwhile, and a closed descriptor
            # silently leaves the selector.
            while not self.closed and not _writable(self._sock, 0.05):
                if time.monotonic() > deadline:
                    self.abort()
                    return
            if not self.closed:
                while self._deferred:
                    self._sock.sendall(self._deferred.popleft())
                self._sock.sendall(frame)
        except (OSError, ValueError):
            pass
        finally:
            self._send_lock.release()

    # -- reading ------------------------------------------------------------------------

    def recv(self) -> bytes:
        """Reads what has arrived (up to 256 KiB); ``b""`` once the peer or abort() ended it."""
        if self._initial:
            data, self._initial = self._initial, b""
            return data
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

    # -- ending -------------------------------------------------------------------------

    def abort(self, reason: str = "") -> None:
        """Shuts the socket down: a blocked ``recv``/``send`` returns at once. Any thread.

        Args:
            reason: Why, for the close event (the first reason given is kept).
        """
        if reason and not self.abort_reason:
            self.abort_reason = reason
        shutdown(self._sock)

    def close(self) -> None:
        """Releases the socket. Idempotent."""
        if not self.closed:
            self.closed = True
            shutdown(self._sock)
            with contextlib.suppress(OSError):
                self._sock.close()


def _writable(sock: socket.socket, timeout: float) -> bool:
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_WRITE)
            return bool(selector.select(timeout))
    except (OSError, ValueError):
        return True  # closed: let the send fail and say why
