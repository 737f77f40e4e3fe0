"""Typed calls on the wire: every call of both schema sets has a method, and its smallest
valid call (required fields only, values from the schema) sends exactly that request, valid
against the call's send/request schema, and returns the reply as it arrived.

A recording server (tests/wsserver.py) answers each request with a minimal reply carrying
its ``req_id``, so every call can be made, including those LocalServer does not implement.
"""

from __future__ import annotations

import inspect
import json
import threading
import uuid
from typing import Any

import pytest
from websockets.sync.server import ServerConnection

from deriv_sdk import Connection, Subscription
from deriv_sdk.api import LegacyAPI, OptionsAPI
from deriv_sdk.api._base import BaseAPI
from tests.api_support import (
    ENVELOPE,
    errors,
    method_arguments,
    options_calls,
    smallest_request,
    v3_calls,
)
from tests.wsserver import ScriptServer

V3 = v3_calls()
OPTIONS = options_calls()
APIS = {"v3": (LegacyAPI, V3), "options": (OptionsAPI, OPTIONS)}
CASES = [(key, call) for key, (_, calls) in APIS.items() for call in calls]
STREAMS = [(key, call) for key, call in CASES if "subscribe" in APIS[key][1][call][0]["properties"]]

#: What the recording server puts under the call's key (else ``{}``).
PAYLOADS: dict[str, Any] = {"forget_all": [], "forget": 1, "ping": "pong", "time": 1}


def methods(cls: type[BaseAPI]) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def test_every_v3_call_has_a_method() -> None:
    assert len(V3) == 137
    assert methods(LegacyAPI) == set(V3)


def test_every_options_call_has_a_method() -> None:
    assert len(OPTIONS) == 30
    assert methods(OptionsAPI) == set(OPTIONS)
    assert "authorize" not in OPTIONS and not hasattr(OptionsAPI, "authorize")


class Recorder:
    """The handler of the recording server: answers every request, remembers the replies."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, ws: ServerConnection, data: Any) -> None:
        call = next(key for key in data if key not in ENVELOPE)
        reply = {"echo_req": data, "msg_type": call, call: PAYLOADS.get(call, {})}
        if "req_id" in data:
            reply["req_id"] = data["req_id"]
        if data.get("subscribe") == 1:
            reply["subscription"] = {"id": uuid.uuid4().hex}
        with self.lock:
            self.requests.append(data)
            self.replies.append(reply)
        ws.send(json.dumps(reply))

    def only(self) -> tuple[dict[str, Any], dict[str, Any]]:
        with self.lock:
            assert len(self.requests) == 1, self.requests
            return self.requests[0], self.replies[0]


@pytest.fixture
def recorder(script_server: ScriptServer) -> Recorder:
    handler = Recorder()
    script_server.handler = handler
    return handler


def connect(server: ScriptServer) -> Connection:
    return Connection(url=server.url, keepalive_interval=None, reconnect=False)


@pytest.mark.parametrize(("api_key", "call"), CASES)
def test_smallest_call_sends_a_valid_request(
    api_key: str, call: str, script_server: ScriptServer, recorder: Recorder
) -> None:
    cls, calls = APIS[api_key]
    schema, _, example = calls[call]
    request = smallest_request(call, schema, example)
    messages: list[dict[str, Any]] = []
    first = threading.Event()

    def listener(message: dict[str, Any]) -> None:
        messages.append(message)
        first.set()

    with connect(script_server) as conn:
        method = getattr(cls(conn), call)
        args, kwargs = method_arguments(call, method, request)
        if "subscribe" in schema.get("required", []):  # transaction: a stream or nothing
            kwargs["listener"] = listener
        result = method(*args, **kwargs)
        sent, reply = recorder.only()
        if isinstance(result, Subscription):
            assert first.wait(5)
    assert errors(schema, sent) == []
    assert {k: v for k, v in sent.items() if k != "req_id"} == request
    if isinstance(result, Subscription):
        assert sent["subscribe"] == 1 and messages == [reply]
    else:
        assert result == reply


@pytest.mark.parametrize(("api_key", "call"), STREAMS)
def test_streaming_call_with_a_listener_subscribes(
    api_key: str, call: str, script_server: ScriptServer, recorder: Recorder
) -> None:
    cls, calls = APIS[api_key]
    schema, _, example = calls[call]
    request = smallest_request(call, schema, example)
    messages: list[dict[str, Any]] = []
    ended: list[Subscription] = []
    first = threading.Event()

    def listener(message: dict[str, Any]) -> None:
        messages.append(message)
        first.set()

    with connect(script_server) as conn:
        method = getattr(cls(conn), call)
        args, kwargs = method_arguments(call, method, request)
        if "on_end" in inspect.signature(Connection.subscribe).parameters:
            kwargs["on_end"] = ended.append
        sub = method(*args, listener=listener, **kwargs)
        assert isinstance(sub, Subscription) and sub.active
        assert first.wait(5)
        sent, reply = recorder.only()
        sub.forget()
    assert errors(schema, sent) == []
    assert {k: v for k, v in sent.items() if k != "req_id"} == {**request, "subscribe": 1}
    assert messages == [reply] and ended == []  # on_end is not called for its own forget()


def test_on_end_without_listener_is_refused(script_server: ScriptServer) -> None:
    with connect(script_server) as conn:
        api: Any = LegacyAPI(conn)
        with pytest.raises(TypeError, match="on_end= needs listener="):
            api.ticks("R_100", on_end=print)
    assert script_server.frames == []


def test_optional_fields_are_sent_only_when_given(
    script_server: ScriptServer, recorder: Recorder
) -> None:
    with connect(script_server) as conn:
        LegacyAPI(conn).ticks_history(
            "R_100", end="latest", count=10, style="candles", passthrough={"mine": 1}
        )
    sent, _ = recorder.only()
    assert {k: v for k, v in sent.items() if k != "req_id"} == {
        "ticks_history": "R_100", "end": "latest", "count": 10, "style": "candles",
        "passthrough": {"mine": 1},
    }  # fmt: skip


def test_nullable_field_sends_null_and_is_left_out_by_default(
    script_server: ScriptServer, recorder: Recorder
) -> None:
    with connect(script_server) as conn:
        api = LegacyAPI(conn)
        api.set_self_exclusion(max_balance=None, max_open_bets=5)
        api.set_self_exclusion(max_deposit=100.0)
    assert [{k: v for k, v in r.items() if k != "req_id"} for r in recorder.requests] == [
        {"set_self_exclusion": 1, "max_balance": None, "max_open_bets": 5},
        {"set_self_exclusion": 1, "max_deposit": 100.0},
    ]
    for request in recorder.requests:
        assert errors(V3["set_self_exclusion"][0], request) == []
