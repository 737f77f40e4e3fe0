"""The reader thread's loop over one link: bytes -> frames -> messages, and RFC 6455's rules.

``Reader.read(link)`` reads until the link ends and returns how it ended (an ``Ending``).
Per read: the frames are parsed, each text message is decoded and routed
(``inbound.Router``), and what the dispatch thread must do is handed over as one ``Batch``.

RFC 6455, exactly:

- A text frame that is not UTF-8 fails the connection with 1007 (checked only when JSON
  decoding fails, so the normal path pays nothing); valid UTF-8 that is not JSON fires
  ``error`` with a ``ProtocolError`` and the connection stays open (Deriv's contract).
- A close frame that is invalid (a one-byte payload, a code that may not be sent, a reason
  that is not UTF-8) is answered with 1002 (1007 for the reason) and never echoed; a valid
  one is echoed with its code (an empty one with an empty payload: 1005, 1006 and 1015 never
  go on the wire).
- A framing violation fails the connection with its code; the messages parsed before it in
  the same read are delivered first.

The reader never blocks on a send: its pongs, close frames and ``forget`` requests go
through ``Link.post``. Back-pressure: when the dispatch queue holds ``max_queue`` messages,
the reader stops reading (TCP pushes back on the server) until half have run, with the
keepalive told (its pings go on, but none is judged while its answer may be unread).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

from .dispatch import Batch, Dispatcher
from .errors import ProtocolError
from .frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    FrameParser,
    encode_close_payload,
    parse_close_payload,
)
from .inbound import BAD, FULL, Router
from .keepalive import Keepalive
from .link import CLOSE_FLUSH_TIMEOUT, Link

__all__ = ["Ending", "Reader"]

logger = logging.getLogger("deriv_sdk.reader")

#: How long the reader may hold back a batch that is not urgent (see ``dispatch.Batch``), and
#: how many messages such a batch may collect: ``message`` events of answers whose caller has
#: them already are at most this late.
HOLD = 0.002
HOLD_MAX = 100


class Ending(NamedTuple):
    """How a link ended: the close code and reason, whether the closing handshake
    completed, and the error that made us fail it (None otherwise)."""

    code: int
    reason: str
    clean: bool
    error: BaseException | None = None


class _Fail(Exception):
    """Fail the connection with ``code`` (raised inside the read loop)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Reader:
    """Reads the links of one connection (the io thread).

    Args:
        router: Routes decoded messages.
        dispatcher: Receives each read's batch; says when to pause.
        keepalive: Told when reading pauses and resumes (None: no keepalive).
        stop: Set by ``close()``: ends a pause.
    """

    def __init__(
        self,
        router: Router,
        dispatcher: Dispatcher,
        keepalive: Keepalive | None,
        stop: threading.Event,
    ) -> None:
        self._router = router
        self._dispatcher = dispatcher
        self._keepalive = keepalive
        self._stop = stop
        self._last_warning = 0.0
        self._batch = Batch()  # what the current read hands over
        self._room: int | None = None  # how many more messages may be queued (None: any)
        # Reads begun / handed over (written by the reader only): see wait_handed_over().
        self.reads_begun = 0
        self._reads_handed = 0
        self._handed = threading.Condition(threading.Lock())
        self._waiting = False

    def read(self, link: Link) -> Ending:
        """Reads ``link`` until it ends."""
        parser = FrameParser()
        recv, feed, dispatcher = link.recv, parser.feed, self._dispatcher
        held = False  # self._batch is held back (not urgent), until hold_until
        hold_until = 0.0
        while True:
            if held:
                # More answers may come at once (a request loop): wait a moment for them,
                # then hand everything over in one batch.
                if not link.readable(hold_until - time.monotonic()):
                    self._hand_over(self._batch)
                    held = False
            elif link.has_deferred and link.try_flush() is False:
                link.wait_readable()
            data = recv()
            if not data:
                if held:
                    self._hand_over(self._batch)
                return Ending(1006, link.abort_reason, False)
            self.reads_begun += 1
            if not held:
                self._batch = Batch()
            self._room = dispatcher.room()
            try:
                try:
                    frames = feed(data)
                except FrameError as exc:
                    self._frames(exc.frames, link)  # what came before it first
                    raise _Fail(exc.code, str(exc)) from None
                ending = self._frames(frames, link)
            except _Fail as fail:
                ending = self._fail(link, fail.code, str(fail), self._batch)
            batch = self._batch
            if ending is None and not batch.urgent and 0 < batch.messages < HOLD_MAX:
                if not held:
                    held, hold_until = True, time.monotonic() + HOLD
                continue
            self._hand_over(batch)
            held = False
            if ending is not None:
                if link.has_deferred:
                    link.flush(CLOSE_FLUSH_TIMEOUT)
                return ending
            if dispatcher.must_pause():
                self._pause(link)

    def _hand_over(self, batch: Batch) -> None:
        self._dispatcher.post_batch(batch)
        self._reads_handed = self.reads_begun
        if self._waiting:
            with self._handed:
                self._handed.notify_all()

    def wait_handed_over(self, read: int, timeout: float) -> None:
        """Blocks (another thread) until read number ``read`` has been handed over to the
        dispatch thread: what it routed is queued before anything posted after this returns.
        The restore uses it so that ``open`` comes after the re-subscribes' first messages."""
        deadline = time.monotonic() + timeout
        with self._handed:
            self._waiting = True
            try:
                while self._reads_handed < read:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self._handed.wait(min(left, 0.05))
            finally:
                self._waiting = False

    def _frames(self, frames: list[tuple[int, bytes]], link: Link) -> Ending | None:
        texts = self._router.texts
        i, n = 0, len(frames)
        while i < n:
            opcode, payload = frames[i]
            if opcode == OP_TEXT:
                i, why = texts(frames, i, self._batch, link, self._room)
                if why == FULL:
                    # max_queue reached inside one read: hand over what is parsed, pause.
                    self._dispatcher.post_batch(self._batch)
                    self._batch = Batch()
                    self._pause(link)
                    self._room = self._dispatcher.room()
                elif why == BAD:
                    self._not_json(frames[i][1], self._batch)
                    i += 1
                continue
            i += 1
            if opcode == OP_CLOSE:
                return self._close_frame(payload, link)
            if opcode == OP_PING:
                link.post(OP_PONG, payload)
            elif opcode == OP_BINARY:
                error = ProtocolError("binary frame received; Deriv sends text", payload)
                self._router.error(error, self._batch)
            # OP_PONG: nothing to do (the keepalive uses Deriv's JSON ping)
        return None

    def _not_json(self, payload: bytes, batch: Batch) -> None:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise _Fail(1007, "text frame that is not valid UTF-8") from None
        self._router.error(ProtocolError("received a frame that is not valid JSON", text), batch)

    def _close_frame(self, payload: bytes, link: Link) -> Ending:
        try:
            code, reason = parse_close_payload(payload)
        except FrameError as exc:
            raise _Fail(exc.code, str(exc)) from None
        if not link.close_sent:  # echo it, as RFC 6455 asks (an empty one stays empty)
            link.post(OP_CLOSE, encode_close_payload(None if code == 1005 else code))
        return Ending(code, reason, True)

    def _fail(self, link: Link, code: int, message: str, batch: Batch) -> Ending:
        """Fails the connection: our close frame with ``code``, then the link ends."""
        error = ProtocolError(f"{message}; closing with {code}")
        logger.info("failing the connection: %s", error)
        self._router.error(error, batch)
        if not link.close_sent:
            link.post(OP_CLOSE, encode_close_payload(code, message[:100]))
        return Ending(code, message, False, error)

    def _pause(self, link: Link) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10.0:
            self._last_warning = now
            logger.warning(
                "listeners are slower than the server: %d messages wait; reading paused until "
                "half of them have run",
                self._dispatcher.queued,
            )
        keepalive = self._keepalive
        if keepalive is not None:
            keepalive.pause()
        self._dispatcher.wait_drained(self._stop)
        if keepalive is not None and not self._stop.is_set():
            keepalive.resume(link)
