"""Small helpers shared by the client's tests: the SDK's live threads, and recorders that a
test waits on (with timeouts) instead of sleeping."""

from __future__ import annotations

import threading
from typing import Any

from deriv_sdk import Connection


def sdk_threads() -> list[str]:
    """The names of the client's live threads (the local server's aside)."""
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("deriv_sdk-") and not t.name.startswith("deriv_sdk-server")
    ]


def fast(url: str, **kwargs: Any) -> Connection:
    """A Connection for tests: no keepalive, quick reconnects, 5 s requests (not connected)."""
    kwargs.setdefault("keepalive_interval", None)
    kwargs.setdefault("reconnect_delay", 0.02)
    kwargs.setdefault("reconnect_max_delay", 0.1)
    kwargs.setdefault("request_timeout", 5.0)
    return Connection(url=url, **kwargs)


class Recorder:
    """A callable that records what it is called with; ``wait(count)`` blocks for it."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[Any]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= count, timeout), self.items
            return list(self.items)


class Events:
    """Every event of a connection (of ``kinds``), in order; ``wait(kind, ...)`` blocks."""

    def __init__(
        self, conn: Connection, kinds: tuple[str, ...] = ("open", "message", "close", "error")
    ) -> None:
        self.items: list[Any] = []
        self.cond = threading.Condition()
        for kind in kinds:
            conn.on(kind, self._add)

    def _add(self, event: Any) -> None:
        with self.cond:
            self.items.append(event)
            self.cond.notify_all()

    def of(self, kind: str, **fields: Any) -> list[Any]:
        with self.cond:
            return [
                e
                for e in self.items
                if e.type == kind and all(getattr(e, k) == v for k, v in fields.items())
            ]

    def wait(self, kind: str, count: int = 1, timeout: float = 5.0, **fields: Any) -> list[Any]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.of(kind, **fields)) >= count, timeout)
            assert ok, f"expected {count} {kind} {fields}, got {self.items}"
            return self.of(kind, **fields)
