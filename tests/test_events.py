"""deriv_sdk.events: event objects and the ListenerRegistry."""

from __future__ import annotations

import logging
import threading

import pytest

from deriv_sdk.events import (
    EVENT_TYPES,
    CloseEvent,
    ErrorEvent,
    Event,
    ListenerRegistry,
    MessageEvent,
    OpenEvent,
)

TARGET = object()


class Errors(list):
    def __call__(self, exc: BaseException) -> None:
        self.append(exc)


def test_event_types() -> None:
    assert EVENT_TYPES == ("open", "message", "close", "error")


def test_listeners_called_in_order_added() -> None:
    errors = Errors()
    reg = ListenerRegistry(errors)
    calls: list[tuple[str, object]] = []
    event = OpenEvent(TARGET)
    for name in "abc":
        reg.add("open", lambda e, name=name: calls.append((name, e)))
    assert reg.has("open") and not reg.has("message")
    reg.emit("open", event)
    assert calls == [("a", event), ("b", event), ("c", event)]
    reg.emit("message", MessageEvent(TARGET, {}, b"{}"))  # no listeners: nothing happens
    assert len(calls) == 3
    assert errors == []


def test_same_listener_twice_is_called_twice() -> None:
    reg = ListenerRegistry(Errors())
    calls: list[object] = []
    reg.add("close", calls.append)
    reg.add("close", calls.append)
    reg.emit("close", CloseEvent(TARGET, 1000, "", True, False))
    assert len(calls) == 2


def test_once_runs_once() -> None:
    reg = ListenerRegistry(Errors())
    calls: list[str] = []
    reg.add("message", lambda e: calls.append("once"), once=True)
    reg.add("message", lambda e: calls.append("always"))
    for _ in range(3):
        reg.emit("message", MessageEvent(TARGET, {}, b"{}"))
    assert calls == ["once", "always", "always", "always"]


@pytest.mark.parametrize("round_", range(20))
def test_once_runs_once_when_emitted_concurrently(round_: int) -> None:
    reg = ListenerRegistry(Errors())
    callers: list[threading.Thread] = []
    inside = threading.Event()
    go_on = threading.Event()

    def listener(event: Event) -> None:
        callers.append(threading.current_thread())
        inside.set()
        go_on.wait(5.0)  # hold the first call open while the other thread emits

    reg.add("open", listener, once=True)
    barrier = threading.Barrier(2, timeout=5.0)

    def fire() -> None:
        barrier.wait()
        reg.emit("open", OpenEvent(TARGET))

    threads = [threading.Thread(target=fire, name=f"test-emit-{i}") for i in range(2)]
    for t in threads:
        t.start()
    try:
        assert inside.wait(5.0)
        (other,) = [t for t in threads if t is not callers[0]]
        other.join(5.0)  # finishes without calling the listener
        assert not other.is_alive()
    finally:
        go_on.set()
        for t in threads:
            t.join(5.0)
    assert not any(t.is_alive() for t in threads)
    assert len(callers) == 1
    assert not reg.has("open")


def test_remove() -> None:
    reg = ListenerRegistry(Errors())
    calls: list[str] = []

    def a(e: Event) -> None:
        calls.append("a")

    def b(e: Event) -> None:
        calls.append("b")

    reg.add("error", a)
    reg.add("error", b)
    reg.add("error", a)
    assert reg.remove("error", a) is True  # the first registration only
    reg.emit("error", ErrorEvent(TARGET, ValueError("x")))
    assert calls == ["b", "a"]
    assert reg.remove("error", a) is True
    assert reg.remove("error", a) is False
    assert reg.remove("open", b) is False
    assert reg.remove("error", b) is True
    assert not reg.has("error")


def test_remove_once_listener_before_it_fires() -> None:
    reg = ListenerRegistry(Errors())
    calls: list[object] = []
    reg.add("open", calls.append, once=True)
    assert reg.remove("open", calls.append) is True
    reg.emit("open", OpenEvent(TARGET))
    assert calls == []


def test_listener_may_remove_itself_during_emit() -> None:
    reg = ListenerRegistry(Errors())
    calls: list[str] = []

    def first(e: Event) -> None:
        calls.append("first")
        reg.remove("open", first)

    reg.add("open", first)
    reg.add("open", lambda e: calls.append("second"))
    reg.emit("open", OpenEvent(TARGET))
    reg.emit("open", OpenEvent(TARGET))
    assert calls == ["first", "second", "second"]


@pytest.mark.parametrize("type_", ["Open", "messages", "", "ping"])
def test_unknown_type_is_value_error(type_: str) -> None:
    reg = ListenerRegistry(Errors())
    with pytest.raises(ValueError, match="unknown event type"):
        reg.add(type_, print)
    with pytest.raises(ValueError, match="unknown event type"):
        reg.remove(type_, print)


def test_non_callable_listener_is_type_error() -> None:
    reg = ListenerRegistry(Errors())
    with pytest.raises(TypeError):
        reg.add("open", "not callable")  # type: ignore[arg-type]
    assert not reg.has("open")


def test_listener_exception_goes_to_on_listener_error() -> None:
    errors = Errors()
    reg = ListenerRegistry(errors)
    calls: list[str] = []
    boom = RuntimeError("boom")

    def bad(e: Event) -> None:
        raise boom

    reg.add("message", lambda e: calls.append("before"))
    reg.add("message", bad)
    reg.add("message", lambda e: calls.append("after"))
    reg.emit("message", MessageEvent(TARGET, {}, b"{}"))
    assert calls == ["before", "after"]
    assert errors == [boom]


def test_error_listener_exception_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = Errors()
    reg = ListenerRegistry(errors)
    calls: list[str] = []

    def bad(e: Event) -> None:
        raise KeyError("inner")

    reg.add("error", bad)
    reg.add("error", lambda e: calls.append("after"))
    with caplog.at_level(logging.ERROR, logger="deriv_sdk.events"):
        reg.emit("error", ErrorEvent(TARGET, ValueError("outer")))
    assert errors == []
    assert calls == ["after"]
    records = [r for r in caplog.records if r.name == "deriv_sdk.events"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None and isinstance(records[0].exc_info[1], KeyError)


def test_open_event() -> None:
    event = OpenEvent(TARGET)
    assert (event.type, event.target, event.reconnected) == ("open", TARGET, False)
    assert OpenEvent(TARGET, reconnected=True).reconnected is True
    assert repr(event) == "OpenEvent(reconnected=False, type='open')"
    assert isinstance(event, Event)


def test_message_event_raw_decodes_lazily() -> None:
    raw = '{"msg_type":"tick","x":"é"}'.encode()
    event = MessageEvent(TARGET, {"msg_type": "tick", "x": "é"}, raw)
    assert event._raw_text is None
    assert event.raw == '{"msg_type":"tick","x":"é"}'
    assert event.raw is event.raw  # decoded once, then cached
    assert event.type == "message"
    assert event.msg_type == "tick"
    assert MessageEvent(TARGET, [1], b"[1]").msg_type is None
    assert MessageEvent(TARGET, {}, b"{}").msg_type is None
    assert MessageEvent(TARGET, None, b"\xff").raw == "\ufffd"


def test_message_event_repr_hides_raw_and_target() -> None:
    text = repr(MessageEvent(TARGET, {"a": 1}, b'{"a":1}'))
    assert text == "MessageEvent(data={'a': 1}, type='message')"


def test_close_event() -> None:
    event = CloseEvent(TARGET, 1006, "gone", False, True)
    assert (event.type, event.code, event.reason, event.was_clean, event.will_reconnect) == (
        "close",
        1006,
        "gone",
        False,
        True,
    )
    assert repr(event) == (
        "CloseEvent(code=1006, reason='gone', was_clean=False, will_reconnect=True, type='close')"
    )


def test_error_event() -> None:
    exc = ValueError("bad thing")
    event = ErrorEvent(TARGET, exc)
    assert (event.type, event.error, event.message) == ("error", exc, "bad thing")
    assert ErrorEvent(TARGET, TimeoutError()).message == "TimeoutError"
    assert (
        repr(event)
        == "ErrorEvent(error=ValueError('bad thing'), message='bad thing', type='error')"
    )
