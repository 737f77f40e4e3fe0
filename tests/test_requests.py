"""Requests, subscriptions, authorization and Deriv's errors, against real local servers."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any

import pytest

from deriv_sdk import (
    APIError,
    Connection,
    ConnectionClosedError,
    ErrorEvent,
    InvalidStateError,
    RequestTimeoutError,
)
from deriv_sdk.testing import LocalServer
from tests.support import Recorder
from tests.wsserver import ScriptServer, pong, wait_until

TOKEN = "test-token"


def connect(url: str, **kwargs: Any) -> Connection:
    kwargs.setdefault("keepalive_interval", None)
    kwargs.setdefault("reconnect", False)
    return Connection(url=url, **kwargs).connect(timeout=5)


def forgets(server: LocalServer) -> list[Any]:
    return [r["forget"] for r in server.requests if "forget" in r]


# --------------------------------------------------------------------------- request()


def test_request_returns_the_servers_dict_and_keeps_the_callers(
    deriv_server: LocalServer,
) -> None:
    with connect(deriv_server.url) as conn:
        payload = {"time": 1}
        response = conn.request(payload)
        assert payload == {"time": 1}
        assert response["msg_type"] == "time" and isinstance(response["time"], int)
        assert response["req_id"] == 1 and response["echo_req"] == {"time": 1, "req_id": 1}
        assert conn.request({"ping": 1, "req_id": 77})["req_id"] == 77  # the caller's is kept


def test_responses_are_matched_by_req_id_when_answered_out_of_order(
    script_server: ScriptServer,
) -> None:
    held: list[Any] = []

    def script(ws: Any, data: Any) -> None:
        if data["req_id"] == 1:
            held.append(data)  # answer request 1 only after request 2
            return
        pong(ws, data)
        pong(ws, held[0])

    script_server.handler = script
    with connect(script_server.url) as conn:
        first: dict[str, Any] = {}
        t = threading.Thread(target=lambda: first.update(conn.request({"ping": 1})))
        t.start()
        script_server.wait_frames(1)
        second = conn.request({"ping": 1})
        t.join(5)
    assert first["req_id"] == 1 and second["req_id"] == 2


def test_an_error_reply_raises_api_error(deriv_server: LocalServer) -> None:
    with connect(deriv_server.url) as conn, pytest.raises(APIError) as info:
        conn.request({"balance": 1})
    error = info.value
    assert error.code == "AuthorizationRequired" and error.message
    assert error.msg_type == "balance" and error.req_id == 1
    assert error.echo_req == {"balance": 1, "req_id": 1}
    assert str(error) == f"AuthorizationRequired: {error.message} (balance, req_id 1)"


def test_no_answer_raises_timeout_on_time_and_forgets_the_entry(
    script_server: ScriptServer,
) -> None:
    script_server.handler = lambda ws, data: None
    with connect(script_server.url) as conn:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError, match="ping"):
            conn.request({"ping": 1}, timeout=0.5)
        assert 0.5 <= time.monotonic() - started <= 0.7
        assert len(conn._outbound.pending) == 0
        with pytest.raises(TimeoutError):  # the builtin mixin
            conn.request({"ping": 1}, timeout=0.05)


def test_a_drop_fails_every_waiting_request_at_once(script_server: ScriptServer) -> None:
    def script(ws: Any, data: Any) -> None:
        if len(script_server.frames) == 5:
            ws.socket.shutdown(socket.SHUT_RDWR)  # abrupt: no close frame

    script_server.handler = script
    conn = connect(script_server.url, request_timeout=30)
    results: list[BaseException] = []
    finished: list[float] = []

    def waiter() -> None:
        try:
            conn.request({"ping": 1})
        except BaseException as exc:
            results.append(exc)
            finished.append(time.monotonic())

    threads = [threading.Thread(target=waiter) for _ in range(5)]
    for t in threads:
        t.start()
    script_server.wait_frames(5)
    dropped = time.monotonic()
    for t in threads:
        t.join(5)
    assert len(results) == 5 and all(isinstance(e, ConnectionClosedError) for e in results)
    assert max(finished) - dropped < 1.0
    conn.close()


def test_request_outside_the_open_life_is_an_invalid_state(deriv_server: LocalServer) -> None:
    conn = Connection(url=deriv_server.url, keepalive_interval=None)
    with pytest.raises(InvalidStateError):
        conn.request({"ping": 1})
    conn.connect(timeout=5)
    conn.close()
    with pytest.raises(InvalidStateError):
        conn.request({"ping": 1})
    with pytest.raises(InvalidStateError):
        conn.send_request({"ping": 1}, print)


def test_request_while_connecting_waits_for_open(deriv_server: LocalServer) -> None:
    conn = Connection(url=deriv_server.url, keepalive_interval=None)
    conn.connect()  # returns at once
    assert conn.request({"ping": 1})["ping"] == "pong"
    conn.close()


def test_a_callers_req_id_that_collides_raises_value_error(script_server: ScriptServer) -> None:
    script_server.handler = lambda ws, data: None
    with connect(script_server.url) as conn:
        conn.send_request({"ping": 1, "req_id": 5}, lambda result: None)
        with pytest.raises(ValueError, match="req_id 5 is in use"):
            conn.request({"ping": 1, "req_id": 5})
        with pytest.raises(TypeError):
            conn.request({"ping": {1, 2}})
        with pytest.raises(TypeError):
            conn.request([("ping", 1)])  # type: ignore[arg-type]
        assert (
            5 in conn._outbound.pending and len(conn._outbound.pending) == 1
        )  # nothing else left behind


def test_eight_threads_of_requests_each_get_their_own_answer(deriv_server: LocalServer) -> None:
    with connect(deriv_server.url) as conn:
        wrong: list[Any] = []

        def worker(n: int) -> None:
            for i in range(1000):
                token = f"{n}-{i}"
                response = conn.request({"ping": 1, "passthrough": {"token": token}})
                if response["passthrough"]["token"] != token:
                    wrong.append((token, response))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
    assert wrong == []
    pings = [r for r in deriv_server.requests if "ping" in r]
    assert len(pings) == 8000


# --------------------------------------------------------------------------- send_request()


def test_send_request_calls_back_once_with_answer_error_or_timeout(
    deriv_server: LocalServer,
) -> None:
    with connect(deriv_server.url, request_timeout=0.3) as conn:
        inbox = Recorder()
        threads: list[str] = []

        def callback(result: Any) -> None:
            threads.append(threading.current_thread().name)
            inbox(result)

        req_id = conn.send_request({"ping": 1}, callback)
        conn.send_request({"balance": 1}, callback)
        inbox.wait(2)
        deriv_server.stall()
        conn.send_request({"time": 1}, callback)
        results = inbox.wait(3)
        deriv_server.resume()
    assert results[0]["req_id"] == req_id == 1
    assert isinstance(results[1], APIError) and results[1].code == "AuthorizationRequired"
    assert isinstance(results[2], RequestTimeoutError)
    assert all(name.startswith("deriv_sdk-dispatch") for name in threads)


# --------------------------------------------------------------------------- listeners calling in


def test_request_and_subscribe_from_inside_a_listener(deriv_server: LocalServer) -> None:
    conn = Connection(url=deriv_server.url, keepalive_interval=None)
    inbox = Recorder()

    def on_open(event: Any) -> None:
        inbox(conn.request({"time": 1}))
        sub = conn.subscribe({"ticks": "R_50"}, lambda msg: None)
        inbox(sub)

    conn.on("open", on_open)
    with conn:
        time_reply, sub = inbox.wait(2)
    assert time_reply["msg_type"] == "time"
    assert sub.id is not None


# --------------------------------------------------------------------------- subscribe()


def test_subscribe_delivers_first_reply_then_ticks_in_order(deriv_server: LocalServer) -> None:
    with connect(deriv_server.url) as conn:
        payload = {"ticks": "R_100"}
        inbox = Recorder()
        sub = conn.subscribe(payload, inbox)
        messages = inbox.wait(5)
        assert payload == {"ticks": "R_100"}
        assert sub.active and sub.request is payload  # the payload, as the caller gave it
        assert all(m["subscription"]["id"] == sub.id for m in messages)
        assert len(sub.id or "") >= 32
        epochs = [m["tick"]["epoch"] for m in messages]
        assert epochs == sorted(epochs)
        assert all(m["tick"]["symbol"] == "R_100" for m in messages)
        assert messages[0]["echo_req"]["ticks"] == "R_100"
        sub.forget()
        sub.forget()  # idempotent
        assert not sub.active
        count = len(inbox.items)
        time.sleep(0.3)  # only to show that no tick follows
        assert len(inbox.items) == count
        assert wait_until(lambda: forgets(deriv_server) == [sub.id])


def test_identical_subscriptions_share_one_server_stream(deriv_server: LocalServer) -> None:
    with connect(deriv_server.url) as conn:
        a, b = Recorder(), Recorder()
        sub_a = conn.subscribe({"ticks": "R_100"}, a)
        sub_b = conn.subscribe({"ticks": "R_100", "passthrough": {"x": 1}}, b)
        assert sub_a.id == sub_b.id
        b.wait(1)  # b gets the stream's latest message at once
        subscribes = [r for r in deriv_server.requests if r.get("ticks") == "R_100"]
        assert len(subscribes) == 1
        sub_a.forget()
        assert not any("forget" in r for r in deriv_server.requests)
        seen = len(b.items)
        b.wait(seen + 3)  # b keeps receiving
        assert sub_b.active and not sub_a.active
        sub_b.forget()
        assert wait_until(lambda: forgets(deriv_server) == [sub_b.id])


def test_a_refused_subscription_raises_and_leaves_nothing(deriv_server: LocalServer) -> None:
    with connect(deriv_server.url) as conn:
        inbox = Recorder()
        started = time.monotonic()
        with pytest.raises(APIError) as info:
            conn.subscribe({"ticks": "NOPE"}, inbox)
        assert time.monotonic() - started < 1.0
        assert info.value.code in ("InvalidSymbol", "MarketIsClosed")
        assert conn._registry.streams() == [] and len(conn._outbound.pending) == 0
        with pytest.raises(APIError):  # the same again: nothing cached
            conn.subscribe({"ticks": "NOPE"}, inbox)
        sub = conn.subscribe({"ticks": "R_10"}, inbox)
        assert inbox.wait(2)[0]["tick"]["symbol"] == "R_10" and sub.active


def test_forget_all_ends_every_local_ticks_subscription(deriv_server: LocalServer) -> None:
    with connect(deriv_server.url) as conn:
        subs = [conn.subscribe({"ticks": s}, lambda m: None) for s in ("R_10", "R_25")]
        history = conn.subscribe(
            {"ticks_history": "R_50", "style": "candles", "end": "latest", "count": 5},
            lambda m: None,
        )
        forgotten = conn.forget_all("ticks")
        assert sorted(forgotten) == sorted(s.id for s in subs)
        assert not any(s.active for s in subs) and history.active
        assert conn.forget_all("candles", "ticks") == [history.id]
        assert not history.active
        with pytest.raises(ValueError):
            conn.forget_all()


def test_forget_by_id_ends_the_local_subscription(deriv_server: LocalServer) -> None:
    with connect(deriv_server.url) as conn:
        sub = conn.subscribe({"ticks": "R_75"}, lambda m: None)
        assert conn.forget(sub.id or "")["forget"] == 1
        assert not sub.active


def test_a_stream_that_ends_on_the_server_ends_the_subscription(
    deriv_server: LocalServer,
) -> None:
    with connect(deriv_server.url) as conn:
        conn.authorize(TOKEN)
        bought = conn.request(
            {
                "buy": "1",  # a string in Deriv's schema
                "price": 100,
                "parameters": {
                    "amount": 10,
                    "basis": "stake",
                    "contract_type": "CALL",
                    "currency": "USD",
                    "duration": 2,
                    "duration_unit": "t",
                    "symbol": "R_100",
                },
            }
        )
        contract_id = bought["buy"]["contract_id"]
        inbox = Recorder()
        done = threading.Event()

        def follow(msg: dict[str, Any]) -> None:
            inbox(msg)
            if msg["proposal_open_contract"].get("is_sold"):
                done.set()

        sub = conn.subscribe({"proposal_open_contract": 1, "contract_id": contract_id}, follow)
        assert done.wait(5)
        last = inbox.items[-1]
        assert "subscription" not in last and last["proposal_open_contract"]["is_sold"] == 1
        assert not sub.active


def test_an_error_on_a_running_stream_ends_it_with_an_error_event(
    script_server: ScriptServer,
) -> None:
    def script(ws: Any, data: Any) -> None:
        sub = {"id": "a" * 32}
        base = {"echo_req": data, "msg_type": "tick", "req_id": data["req_id"]}
        ws.send(json.dumps({**base, "tick": {"quote": 1}, "subscription": sub}))
        ws.send(json.dumps({**base, "error": {"code": "MarketIsClosed", "message": "closed"}}))

    script_server.handler = script
    conn = connect(script_server.url)
    errors = Recorder()
    conn.on("error", errors)
    sub = conn.subscribe({"ticks": "R_100"}, lambda m: None)
    (event,) = errors.wait(1)
    assert isinstance(event, ErrorEvent) and isinstance(event.error, APIError)
    assert event.error.code == "MarketIsClosed"
    assert not sub.active
    conn.close()


def test_messages_without_our_req_id_reach_only_message_listeners(
    script_server: ScriptServer,
) -> None:
    def script(ws: Any, data: Any) -> None:
        ws.send(json.dumps({"msg_type": "website_status", "website_status": {}}))
        ws.send(json.dumps({"msg_type": "ping", "ping": "pong", "req_id": 999}))
        pong(ws, data)

    script_server.handler = script
    conn = connect(script_server.url)
    messages, stream = Recorder(), Recorder()
    conn.on("message", lambda event: messages(event.data))
    conn.send_request({"ping": 1}, stream)
    got = messages.wait(3)
    assert [m.get("req_id") for m in got] == [None, 999, 1]
    assert [r["req_id"] for r in stream.wait(1)] == [1]  # the callback got only its answer
    conn.close()


# --------------------------------------------------------------------------- authorize()


def test_authorize_and_the_token_never_leaks(
    deriv_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Wr0ngT0kenXYZ123"
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="deriv_sdk"):
        conn = connect(deriv_server.url)
        with pytest.raises(APIError) as info:
            conn.authorize(secret)
        texts += [str(info.value), repr(info.value), json.dumps(info.value.echo_req)]
        assert info.value.code == "InvalidToken"
        response = conn.authorize(TOKEN)
        assert response["authorize"]["loginid"]
        assert conn.request({"balance": 1})["balance"]["currency"] == "USD"
        texts.append(repr(conn))
        conn.close()
    # The client's own records; deriv_sdk.testing is the (simulated) remote server's side.
    client_log = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("deriv_sdk.testing")
    )
    assert "-> authorize (req_id 1)" in client_log  # the session was logged at DEBUG
    for text in [*texts, client_log]:
        assert secret not in text and TOKEN not in text


def test_authorize_rejects_a_non_string_token(deriv_server: LocalServer) -> None:
    with connect(deriv_server.url) as conn, pytest.raises(TypeError):
        conn.authorize(None)  # type: ignore[arg-type]


def test_a_stream_nobody_holds_any_more_is_answered_with_forget(
    script_server: ScriptServer,
) -> None:
    def script(ws: Any, data: Any) -> None:
        if "ticks" in data:
            time.sleep(0.5)  # answer after the client gave up waiting
            base = {"echo_req": data, "msg_type": "tick", "req_id": data["req_id"]}
            for quote in (1, 2, 3):
                tick = {**base, "tick": {"quote": quote}, "subscription": {"id": "c" * 32}}
                ws.send(json.dumps(tick))
        elif "forget" in data:
            ws.send(json.dumps({"echo_req": data, "msg_type": "forget", "forget": 1,
                                "req_id": data["req_id"]}))  # fmt: skip

    script_server.handler = script
    with connect(script_server.url) as conn:
        with pytest.raises(RequestTimeoutError):
            conn.subscribe({"ticks": "R_100"}, lambda m: None, timeout=0.2)
        frames = script_server.wait_frames(2)
        assert json.loads(frames[1])["forget"] == "c" * 32
        time.sleep(0.3)  # only to show that the later ticks bring no second forget
        assert sum("forget" in f for f in script_server.frames if isinstance(f, str)) == 1


def test_authorize_forget_and_forget_all_take_the_calls_other_fields(
    deriv_server: LocalServer,
) -> None:
    with Connection(url=deriv_server.url, keepalive_interval=None) as conn:
        reply = conn.authorize("test-token", passthrough={"n": 1})
        assert reply["passthrough"] == {"n": 1}
        sub = conn.subscribe({"ticks": "R_100"}, lambda m: None)
        assert conn.forget(sub.id, passthrough={"n": 2})["passthrough"] == {"n": 2}
        assert not sub.active
        sub = conn.subscribe({"ticks": "R_50"}, lambda m: None)
        assert conn.forget_all("ticks", passthrough={"n": 3}) == [sub.id]
    sent = [r for r in deriv_server.requests if "forget_all" in r]
    assert sent[0]["passthrough"] == {"n": 3}
