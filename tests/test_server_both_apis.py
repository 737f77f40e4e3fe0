"""One LocalServer serving v3 and the new API at once (one market, separate accounts), and each
fault control on the sockets of both APIs and on REST."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import websocket
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

from deriv_sdk.testing import LocalServer
from deriv_sdk.testing.pats import derive_account_id
from tests.server_helpers import (
    PAT,
    TOKEN,
    Client,
    OptionsClient,
    Rest,
    assert_rest_valid,
    assert_valid,
    demo_client,
    options_server,
)

__all__ = ["options_server"]  # fixtures

pytestmark = pytest.mark.timeout(30)

V3_PARAMS = {
    "amount": 10,
    "basis": "stake",
    "contract_type": "CALL",
    "currency": "USD",
    "duration": 600,
    "duration_unit": "s",
    "symbol": "R_50",
}
OPTIONS_PARAMS = {**{k: v for k, v in V3_PARAMS.items() if k != "symbol"}}
OPTIONS_PARAMS["underlying_symbol"] = "R_50"


def _ticks(c: Client, sub: str, count: int) -> list[tuple[int, float]]:
    out = []
    for _ in range(count):
        message = c.wait_for(lambda m: m.get("subscription", {}).get("id") == sub)
        out.append((message["tick"]["epoch"], message["tick"]["quote"]))
    return out


def test_both_apis_at_once_share_the_market_not_the_accounts(options_server: LocalServer) -> None:
    v3 = Client(options_server.url)
    assert v3.request({"authorize": TOKEN})["authorize"]["balance"] == 10000
    new = demo_client(options_server)
    errors: list[BaseException] = []
    results: dict[str, Any] = {}
    # Both streams start together; what each then reads is queued, whenever its thread runs.
    v3_sub = v3.request({"ticks": "R_100", "subscribe": 1})["subscription"]["id"]
    new_sub = new.request({"ticks": "R_100", "subscribe": 1})["subscription"]["id"]

    def trade_v3() -> None:
        try:
            results["v3_ticks"] = _ticks(v3, v3_sub, 20)
            bought = v3.request({"buy": "1", "price": 10, "parameters": V3_PARAMS, "subscribe": 1})
            assert_valid("buy", bought)
            results["v3_buy"] = bought["buy"]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def trade_new() -> None:
        try:
            results["new_ticks"] = _ticks(new, new_sub, 20)
            bought = new.request({"buy": "1", "price": 10, "parameters": OPTIONS_PARAMS})
            results["new_buy"] = bought["buy"]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f, name=f.__name__) for f in (trade_v3, trade_new)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not errors, errors
    # One market: the ticks both APIs saw at the same time are the same ticks, in order.
    common = set(results["v3_ticks"]) & set(results["new_ticks"])
    assert len(common) >= 15
    assert [t for t in results["v3_ticks"] if t in common] == [
        t for t in results["new_ticks"] if t in common
    ]
    # Separate accounts: each paid for its own contract only.
    v3_left = v3.request({"balance": 1})["balance"]
    new_left = new.request({"balance": 1})["balance"]
    assert v3_left["loginid"].startswith("VRTC") and new_left["loginid"] == derive_account_id(PAT)
    assert v3_left["balance"] == round(10000 - results["v3_buy"]["buy_price"], 2)
    assert new_left["balance"] == round(10000 - results["new_buy"]["buy_price"], 2)
    v3_open = v3.request({"portfolio": 1})["portfolio"]["contracts"]
    new_open = new.request({"portfolio": 1})["portfolio"]["contracts"]
    assert results["new_buy"]["contract_id"] not in [c["contract_id"] for c in v3_open]
    assert results["v3_buy"]["contract_id"] not in [c["contract_id"] for c in new_open]
    assert v3_open[0]["symbol"] == "R_50" and new_open[0]["underlying_symbol"] == "R_50"
    v3.close()
    new.close()
    apis = [h["api"] for h in options_server.handshakes]
    assert apis.count("legacy") == 1 and apis.count("options") == 1
    calls = [next(iter(r)) for r in options_server.requests]
    assert calls.count("ticks") == 2 and calls.count("buy") == 2 and "authorize" in calls


def three_sockets(server: LocalServer) -> list[Client]:
    """A v3 socket, the new API's public socket and its demo socket."""
    return [Client(server.url), OptionsClient(server.options_url), demo_client(server)]


def test_drop_every_socket_of_both_apis_and_rest(options_server: LocalServer) -> None:
    sockets = three_sockets(options_server)
    for c in sockets:
        c.request({"ticks": "R_10", "subscribe": 1})
    rest = Rest(options_server)
    rest.accounts()  # a kept-alive HTTP connection
    options_server.drop()
    for c in sockets:
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            while True:  # messages already in flight may come first
                c.ws.recv()
    assert rest.conn.sock is not None
    assert rest.conn.sock.recv(10) == b""  # the HTTP connection was shut too
    rest.close()


@pytest.mark.parametrize("which", ["legacy", "public", "demo"])
def test_drop_sends_no_close_frame(options_server: LocalServer, which: str) -> None:
    url = {"legacy": options_server.url, "public": options_server.options_url}.get(which)
    if url is None:
        rest = Rest(options_server)
        url = rest.otp_url(derive_account_id(PAT))
        rest.close()
    with connect(url, open_timeout=5) as ws:
        ws.send(json.dumps({"ping": 1}))
        ws.recv(timeout=5)
        options_server.drop()
        with pytest.raises(ConnectionClosedError) as info:
            while True:
                ws.recv(timeout=5)
        assert info.value.rcvd is None


def test_close_all_on_both_apis(options_server: LocalServer) -> None:
    sockets = three_sockets(options_server)
    for c in sockets:
        c.request({"ping": 1})
    options_server.close_all(4003, "bye")
    for c in sockets:
        c.ws.settimeout(5)
        opcode, data = c.ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 4003 and data[2:] == b"bye"
        c.ws.send_close()
        c.ws.shutdown()


def test_stall_and_resume_on_both_apis_and_rest(options_server: LocalServer) -> None:
    sockets = three_sockets(options_server)
    rest = Rest(options_server)
    options_server.stall()
    for i, c in enumerate(sockets):
        c.send({"ping": 1, "req_id": 50 + i})
    held: list[Any] = []
    thread = threading.Thread(target=lambda: held.append(rest.accounts()), name="held-rest")
    thread.start()
    for c in sockets:
        c.ws.settimeout(0.4)
        with pytest.raises(websocket.WebSocketTimeoutException):
            c.ws.recv()  # nothing, not even the pong
    assert held == []  # the REST answer is held too
    options_server.resume()
    for i, c in enumerate(sockets):
        assert c.wait_for(lambda m, i=i: m.get("req_id") == 50 + i)["ping"] == "pong"
    thread.join(5)
    assert len(held) == 1 and held[0][0]["account_id"] == derive_account_id(PAT)
    for c in sockets:
        c.close()
    rest.close()


def test_delay_on_both_apis_and_rest(options_server: LocalServer) -> None:
    sockets = three_sockets(options_server)
    rest = Rest(options_server)
    options_server.delay(0.4)
    for c in sockets:
        started = time.monotonic()
        assert c.request({"ping": 1})["ping"] == "pong"
        assert time.monotonic() - started >= 0.35
    started = time.monotonic()
    rest.accounts()
    assert time.monotonic() - started >= 0.35
    options_server.delay(0)
    started = time.monotonic()
    for c in sockets:
        c.request({"ping": 1})
    rest.accounts()
    assert time.monotonic() - started < 0.35
    for c in sockets:
        c.close()
    rest.close()


def test_send_malformed_on_both_apis(options_server: LocalServer) -> None:
    sockets = three_sockets(options_server)
    for c in sockets:
        c.request({"ping": 1})
    options_server.send_malformed()
    for c in sockets:
        c.ws.settimeout(5)
        text = c.ws.recv()
        with pytest.raises(ValueError):
            json.loads(text)
        assert c.request({"ping": 1})["ping"] == "pong"  # still usable
        c.close()


def test_refuse_counts_every_http_request_of_both_apis(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    url = rest.otp_url(derive_account_id(PAT))
    options_server.refuse(4, 503)
    for target in (options_server.url, options_server.options_url, url):
        with pytest.raises(InvalidStatus) as info, connect(target, open_timeout=5):
            pass
        response = info.value.response
        assert response.status_code == 503
        body = json.loads(response.body)
        assert_rest_valid("websocket", 503, body)
        assert body["errors"][0]["message"] == "Service temporarily unavailable"
    status, _, body = rest.call("GET", "/trading/v1/options/accounts")
    assert status == 503
    assert_rest_valid("get_accounts", status, body)
    assert rest.accounts()  # the count is used up
    c = Client(options_server.url)
    assert c.request({"ping": 1})["ping"] == "pong"
    c.close()
    assert [h["status"] for h in options_server.handshakes] == [503, 503, 503, 101]
    assert [r["status"] for r in options_server.rest_requests] == [200, 503, 200]
    rest.close()


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 502, 504])
def test_refuse_with_any_status_for_client_tests(options_server: LocalServer, status: int) -> None:
    options_server.refuse(2, status)
    rest = Rest(options_server)
    got, _, body = rest.call("POST", f"/trading/v1/options/accounts/{derive_account_id(PAT)}/otp")
    assert got == status
    assert_rest_valid("websocket", status, body)
    got, _, body = rest.call("GET", "/v1/health")
    assert got == status and isinstance(body, str)  # health answers text, refused or not
    assert rest.call("GET", "/v1/health")[2] == "OK"
    rest.close()


def test_refuse_rejects_what_is_not_an_error_status(options_server: LocalServer) -> None:
    for status in (200, 302, 399, 600, 499):
        with pytest.raises(ValueError):
            options_server.refuse(1, status)
    with pytest.raises(ValueError):
        options_server.refuse(-1)


def test_logs_are_copies_and_carry_no_headers(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    rest.accounts()
    logged = options_server.rest_requests
    assert logged == [{"method": "GET", "path": "/trading/v1/options/accounts", "status": 200}]
    logged.clear()
    assert len(options_server.rest_requests) == 1
    assert PAT not in json.dumps(options_server.rest_requests)
    rest.close()
    c = OptionsClient(options_server.options_url)
    c.request({"ping": 1, "req_id": 1})
    assert {"ping": 1, "req_id": 1} in options_server.requests
    c.close()
