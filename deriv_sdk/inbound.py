"""The io thread's side of the socket: read frames, decode, route, hand over.

``Inbound.read(link)`` reads until the link ends and returns how it ended. For each text
message it resolves the pending request or routes the stream update on the io thread
itself (cheap, no user code), then hands the message to the dispatch thread, which fires
``message`` and calls the listeners. Correlation is on ``req_id`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .dispatch import Dispatcher
from .errors import APIError, ConnectionClosedError, ProtocolError
from .events import ErrorEvent
from .frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    FrameParser,
    parse_close_payload,
)
from .pending import PendingTable
from .protocol import Kind, classify, loads
from .subscriptions import Stream, Subscription, SubscriptionRegistry
from .transport import Link

__all__ = ["Inbound"]

logger = logging.getLogger("deriv_sdk.inbound")


class Inbound:
    """Routes what one connection receives.

    Args:
        target: The Connection (the ``target`` of events).
        pending: Its pending table.
        subs: Its subscription registry.
        dispatcher: Its dispatch thread.
        forget_id: Sends ``forget`` for a server stream nobody holds any more.
        closing: True once the user asked to close (then a close frame is not echoed).
        wants_messages: True when ``message`` listeners are registered.
    """

    def __init__(
        self,
        target: Any,
        pending: PendingTable,
        subs: SubscriptionRegistry,
        dispatcher: Dispatcher,
        forget_id: Callable[[str | None], None],
        closing: Callable[[], bool],
        wants_messages: Callable[[], bool],
    ) -> None:
        self._target = target
        self._pending = pending
        self._subs = subs
        self._dispatcher = dispatcher
        self._forget_id = forget_id
        self._closing = closing
        self._wants_messages = wants_messages
        self.fatal = False  # set by InvalidAppID: retrying with this app_id cannot help

    def read(self, link: Link) -> tuple[int, str, bool]:
        """Reads ``link`` until it ends; returns ``(code, reason, was_clean)``."""
        parser = FrameParser()
        recv, feed, on_text = link.recv, parser.feed, self.on_text
        while True:
            data = recv()
            if not data:
                return 1006, "", False
            try:
                frames = feed(data)
            except FrameError as exc:
                link.send_close(exc.code, str(exc)[:100])
                self._error(ProtocolError(str(exc)))
                return exc.code, str(exc), False
            for opcode, payload in frames:
                if opcode == OP_TEXT:
                    on_text(payload)
                elif opcode == OP_BINARY:
                    self._error(ProtocolError("binary frame received; Deriv sends text", payload))
                elif opcode == OP_PING:
                    try:
                        link.send_frame(OP_PONG, payload)
                    except ConnectionClosedError:
                        pass
                elif opcode == OP_CLOSE:
                    code, reason = parse_close_payload(payload)
                    if not self._closing():  # echo it, as RFC 6455 asks
                        link.send_close(code if code != 1005 else 1000, "")
                    return code, reason, True
                # OP_PONG: nothing to do (the keepalive uses Deriv's JSON ping)

    def on_text(self, payload: bytes) -> None:
        """One text message: decode, route, hand to the dispatch thread."""
        try:
            data = loads(payload)
        except (ValueError, RecursionError):  # (json's decoder recurses on deep nesting)
            text = payload.decode("utf-8", "replace")
            self._error(ProtocolError("received a frame that is not valid JSON", text))
            return
        subs: tuple[Subscription, ...] = ()
        final = False
        entry = None
        kind, req_id, sub_id = classify(data)  # the envelope rules: protocol.py, pure
        if kind is Kind.ERROR:
            error = data["error"]
            if isinstance(error, dict) and error.get("code") == "InvalidAppID":
                self.fatal = True
        if req_id is not None:
            stream = self._subs.by_req.get(req_id)
            if stream is not None:
                subs, final = self._on_stream_message(stream, data, kind, sub_id)
            # Stream updates have no pending entry: skip the table's lock for them.
            entry = self._pending.resolve(req_id, data) if req_id in self._pending else None
            if entry is None:
                if stream is None and sub_id is not None and self._subs.was_ours(req_id):
                    self._forget_id(sub_id)
            elif entry.callback is None:
                entry = None  # a blocking waiter: already woken
            elif entry.inline:
                entry.callback(data)  # internal (keepalive): must not wait for listeners
                entry = None
        # Nothing to run on the dispatch thread (a blocking request's answer, no message
        # listener): skip the hand-off, so the waiting caller alone is woken.
        if subs or entry is not None or self._wants_messages():
            self._dispatcher.post_inbound((data, payload, subs, final, entry))

    def _on_stream_message(
        self, stream: Stream, data: dict[str, Any], kind: Kind, sub_id: str | None
    ) -> tuple[tuple[Subscription, ...], bool]:
        """Routes a message of one of our streams; returns (handles to deliver to, final)."""
        if kind is Kind.ERROR:
            error = APIError.from_response(data)
            was_running = stream.first.is_set()
            self._subs.fail(stream, error)
            if was_running:
                self._error(error)
            return (), False
        if not stream.first.is_set():
            self._subs.first_reply(stream, data, sub_id)
        subs = self._subs.record(stream, data)
        if sub_id is None:  # a stream that ended on the server (e.g. a sold contract)
            self._subs.end(stream)
            return subs, True
        return subs, False

    def _error(self, error: BaseException) -> None:
        self._dispatcher.post_event("error", ErrorEvent(self._target, error))
