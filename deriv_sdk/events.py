"""Event objects (mirroring the browser's) and the listener registry.

The registry keeps, per event type, an immutable tuple of listeners that is replaced on
every change (copy on write), so firing an event takes no lock and a listener may add or
remove listeners, including itself, while the event is being fired.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = [
    "EVENT_TYPES",
    "CloseEvent",
    "ErrorEvent",
    "Event",
    "ListenerRegistry",
    "MessageEvent",
    "OpenEvent",
]

logger = logging.getLogger("deriv_sdk.events")

EVENT_TYPES = ("open", "message", "close", "error")

Listener = Callable[[Any], object]


class Event:
    """The base of every event: ``type`` and ``target`` (the Connection)."""

    __slots__ = ("target", "type")

    def __init__(self, type: str, target: Any) -> None:
        self.type = type
        self.target = target

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for cls in type(self).__mro__
            for name in getattr(cls, "__slots__", ())
            if name not in ("target", "_raw", "_raw_text")
        )
        return f"{type(self).__name__}({fields})"


class OpenEvent(Event):
    """The connection is OPEN. ``reconnected`` is True when this follows a reconnect."""

    __slots__ = ("reconnected",)

    def __init__(self, target: Any, reconnected: bool = False) -> None:
        super().__init__("open", target)
        self.reconnected = reconnected


class MessageEvent(Event):
    """A message from the server.

    Attributes:
        data: The decoded JSON value (a dict for every Deriv message).
        raw: The text as received (decoded from UTF-8 on first access).
        msg_type: ``data["msg_type"]`` when ``data`` is a dict, else None.
    """

    __slots__ = ("_raw", "_raw_text", "data")

    def __init__(self, target: Any, data: Any, raw: bytes) -> None:
        # One per message: the base __init__ is inlined (a measurable share of the hot path).
        self.type = "message"
        self.target = target
        self.data = data
        self._raw = raw
        self._raw_text: str | None = None

    @property
    def raw(self) -> str:
        if self._raw_text is None:
            self._raw_text = self._raw.decode("utf-8", "replace")
        return self._raw_text

    @property
    def msg_type(self) -> str | None:
        data = self.data
        return data.get("msg_type") if isinstance(data, dict) else None


class CloseEvent(Event):
    """The connection closed.

    Attributes:
        code: The close code (1006 for a drop without a close frame).
        reason: The close reason.
        was_clean: True when the closing handshake completed (never for 1006).
        will_reconnect: True when the SDK is about to reconnect.
    """

    __slots__ = ("code", "reason", "was_clean", "will_reconnect")

    def __init__(
        self, target: Any, code: int, reason: str, was_clean: bool, will_reconnect: bool
    ) -> None:
        super().__init__("close", target)
        self.code = code
        self.reason = reason
        self.was_clean = was_clean and code != 1006  # 1006 means no close frame: never clean
        self.will_reconnect = will_reconnect


class ErrorEvent(Event):
    """Something went wrong: ``error`` is the exception, ``message`` its text."""

    __slots__ = ("error", "message")

    def __init__(self, target: Any, error: BaseException) -> None:
        super().__init__("error", target)
        self.error = error
        self.message = str(error) or type(error).__name__


def check_type(type: str) -> None:
    """Raises ValueError for an event type that is not open/message/close/error."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}; expected one of {EVENT_TYPES}")


class ListenerRegistry:
    """Listeners per event type, called in the order added.

    ``emit`` isolates listeners: one that raises does not stop the others; its exception
    is passed to ``on_listener_error`` (the Connection fires ``error`` with it), except for
    exceptions from ``error`` listeners, which are only logged (no recursion).
    """

    def __init__(self, on_listener_error: Callable[[BaseException], None] | None = None) -> None:
        self._lock = threading.Lock()
        # Each entry: (listener, once).
        self._listeners: dict[str, tuple[tuple[Listener, bool], ...]] = {t: () for t in EVENT_TYPES}
        self.on_listener_error = on_listener_error

    def add(self, type: str, listener: Listener, once: bool = False) -> None:
        check_type(type)
        if not callable(listener):
            raise TypeError("listener must be callable")
        with self._lock:
            self._listeners[type] = (*self._listeners[type], (listener, once))

    def remove(self, type: str, listener: Listener) -> bool:
        """Removes the first registration of ``listener``; False when there was none."""
        check_type(type)
        with self._lock:
            entries = self._listeners[type]
            for i, (fn, _) in enumerate(entries):
                if fn == listener:
                    self._listeners[type] = entries[:i] + entries[i + 1 :]
                    return True
        return False

    def has(self, type: str) -> bool:
        return bool(self._listeners[type])

    def emit(self, type: str, event: Event) -> None:
        """Calls every listener of ``type`` with ``event``, on the calling thread."""
        for entry in self._listeners[type]:
            listener, once = entry
            if once and not self._remove_entry(type, entry):
                continue  # another thread fired it already
            try:
                listener(event)
            except BaseException as exc:  # SystemExit too: the dispatch thread must live on
                if type == "error":
                    logger.exception("an 'error' listener raised; ignored")
                else:
                    logger.debug("a %r listener raised %r", type, exc)
                    if self.on_listener_error is not None:
                        self.on_listener_error(exc)

    def _remove_entry(self, type: str, entry: tuple[Listener, bool]) -> bool:
        with self._lock:
            entries = self._listeners[type]
            for i, candidate in enumerate(entries):
                if candidate is entry:
                    self._listeners[type] = entries[:i] + entries[i + 1 :]
                    return True
        return False
