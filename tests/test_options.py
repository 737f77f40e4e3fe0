"""``Connection.options`` and ``RestClient`` against LocalServer's new API (the contract's
"Deriv's new API" section, and "which failures are retried")."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
import websocket

from deriv_sdk import (
    ConnectError,
    Connection,
    RestClient,
    RestError,
)
from deriv_sdk.testing import LocalServer
from tests.rawserver import Peer, RawServer
from tests.support import Events as AllEvents
from tests.wsserver import wait_until

PAT = "test-pat"
APP_ID = "app-k7Jd2Xq8mNpR4vTwYzB6c"


class Events(AllEvents):
    def __init__(self, conn: Connection) -> None:
        super().__init__(conn, ("open", "close", "error"))


def rest_for(server: LocalServer, pat: str = PAT) -> RestClient:
    return RestClient(APP_ID, pat, base_url=server.rest_url, timeout=5)


def demo_account(rest: RestClient) -> str:
    return next(a["account_id"] for a in rest.accounts() if a["account_type"] == "demo")


def options(server: LocalServer, rest: RestClient | None = None, **kwargs: Any) -> Connection:
    kwargs.setdefault("keepalive_interval", None)
    kwargs.setdefault("reconnect_delay", 0.02)
    kwargs.setdefault("reconnect_max_delay", 0.1)
    kwargs.setdefault("request_timeout", 5.0)
    if rest is None:
        return Connection.options(url=server.options_url, **kwargs)
    return Connection.options(demo_account(rest), rest=rest, **kwargs)


def otp_posts(server: LocalServer) -> list[dict[str, Any]]:
    return [r for r in server.rest_requests if r["path"].endswith("/otp")]


# ----------------------------------------------------------------- RestClient


def test_rest_client_calls(deriv_server: LocalServer) -> None:
    rest = rest_for(deriv_server)
    (account,) = rest.accounts()
    assert account["account_type"] == "demo" and account["balance"] == 10000
    assert rest.create_account() == account  # Deriv answers 200 with the existing one
    real = rest.create_account("real")  # 201 with a one-item list: one dict here
    assert real["account_type"] == "real" and real["account_id"] != account["account_id"]
    assert rest.reset_demo_balance(account["account_id"])["balance"] == 10000
    url = rest.otp_url(account["account_id"])
    assert url.startswith("ws://") and "/ws/demo?otp=" in url
    assert rest.health() is True
    assert PAT not in repr(rest)


def test_rest_errors_carry_derivs_envelope(deriv_server: LocalServer) -> None:
    bad = rest_for(deriv_server, pat="not-a-pat")
    with pytest.raises(RestError) as info:
        bad.accounts()
    assert info.value.status == 401 and info.value.code == "Unauthorized"
    assert not info.value.retryable
    assert "not-a-pat" not in str(info.value) and "not-a-pat" not in repr(info.value)
    rest = rest_for(deriv_server)
    with pytest.raises(RestError) as info:
        rest.reset_demo_balance(rest.create_account("real")["account_id"])
    assert info.value.status == 400 and "Only demo accounts" in info.value.message
    deriv_server.refuse(1, 503)
    assert rest.health() is False  # never raises for 503
    deriv_server.refuse(1, 429)
    with pytest.raises(RestError) as info:
        rest.accounts()
    assert info.value.retryable


def test_rest_network_failure_is_a_connect_error() -> None:
    rest = RestClient(APP_ID, PAT, base_url="http://127.0.0.1:1", timeout=2)
    with pytest.raises(ConnectError, match="refused"):
        rest.accounts()


def test_rest_token_may_be_a_callable_called_per_request(deriv_server: LocalServer) -> None:
    calls: list[int] = []

    def token() -> str:
        calls.append(1)
        return PAT

    rest = RestClient(APP_ID, token, base_url=deriv_server.rest_url)
    rest.accounts()
    rest.accounts()
    assert len(calls) == 2


def test_rest_client_arguments() -> None:
    for args, kwargs in [(("", PAT), {}), ((APP_ID, ""), {}), ((APP_ID, PAT), {"timeout": 0})]:
        with pytest.raises(ValueError):
            RestClient(*args, **kwargs)
    with pytest.raises(ValueError):
        RestClient(APP_ID, PAT, base_url="ftp://x")


# ----------------------------------------------------------------- the public socket


def test_the_public_socket_needs_no_account(deriv_server: LocalServer) -> None:
    with options(deriv_server) as conn:
        assert conn.request({"time": 1})["msg_type"] == "time"
        ticks: list[Any] = []
        got = threading.Event()
        sub = conn.subscribe({"ticks": "R_100"}, lambda m: (ticks.append(m), got.set()))
        assert got.wait(5) and ticks[0]["tick"]["symbol"] == "R_100"
        sub.forget()
    assert conn.url == deriv_server.options_url


def test_default_urls_of_the_new_api() -> None:
    conn = Connection.options()
    assert conn.url == "wss://api.derivws.com/trading/v1/options/ws/public"
    conn = Connection.options(endpoint="staging-api.derivws.com")
    assert conn.url == "wss://staging-api.derivws.com/trading/v1/options/ws/public"


def test_options_arguments() -> None:
    rest = RestClient(APP_ID, PAT)
    for name in ("app_id", "language", "brand"):
        with pytest.raises(TypeError, match=name):
            Connection.options(**{name: "x"})
    with pytest.raises(TypeError):
        Connection.options(nonsense=1)
    with pytest.raises(ValueError, match="rest"):
        Connection.options("DOT1")
    with pytest.raises(ValueError, match="url"):
        Connection.options("DOT1", rest=rest, url="ws://x/")
    conn = Connection.options("DOT1", rest=rest, request_timeout=3, max_queue=5)
    assert conn.request_timeout == 3 and conn.url is None  # None until the first attempt


def test_authorize_on_the_new_api_is_a_value_error_and_sends_nothing(
    deriv_server: LocalServer,
) -> None:
    with options(deriv_server) as conn, pytest.raises(ValueError, match="no authorize"):
        conn.authorize("anything")
    assert not any("authorize" in r for r in deriv_server.requests)


# ----------------------------------------------------------------- an account's socket


def test_a_fresh_otp_before_every_attempt_and_subscriptions_back(
    deriv_server: LocalServer,
) -> None:
    rest = rest_for(deriv_server)
    conn = options(deriv_server, rest)
    events = Events(conn)
    conn.connect(timeout=5)
    assert "otp=<redacted>" in str(conn.url) and "otp=<redacted>" in repr(conn)
    balance = conn.request({"balance": 1})["balance"]
    assert balance["balance"] == 10000
    ticks: list[dict[str, Any]] = []
    sub = conn.subscribe({"ticks": "R_100"}, ticks.append)
    for i in range(10):
        deriv_server.drop()
        assert wait_until(lambda n=i: len(events.of("open")) == n + 2, 10)
        n = len(ticks)
        assert wait_until(lambda n=n: len(ticks) > n)  # the stream is back
    assert sub.active
    otps = [h["otp"] for h in deriv_server.handshakes if h["api"] == "options"]
    assert len(otps) == 11 and len(set(otps)) == 11  # 10 + 1, none reused
    assert len(otp_posts(deriv_server)) == 11
    assert all(h["status"] == 101 for h in deriv_server.handshakes)
    assert not any("authorize" in r for r in deriv_server.requests)
    conn.close()


class UsedFirst(RestClient):
    """Hands out one already used one-time URL first (what a slow network can do to an OTP)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stale = True

    def otp_url(self, account_id: str, timeout: float | None = None, **kwargs: Any) -> str:
        url = super().otp_url(account_id, timeout, **kwargs)
        if self.stale:
            self.stale = False
            websocket.create_connection(url, timeout=5).close()  # use it up
        return url


def test_a_401_handshake_gets_one_immediate_new_otp(deriv_server: LocalServer) -> None:
    rest = UsedFirst(APP_ID, PAT, base_url=deriv_server.rest_url)
    conn = options(deriv_server, rest)
    events = Events(conn)
    conn.connect(timeout=5)  # the first OTP is refused (401); the second opens
    statuses = [h["status"] for h in deriv_server.handshakes]
    assert statuses == [101, 401, 101]  # (the first 101 is UsedFirst's own use of it)
    assert events.of("error") == []  # retried at once: not a failed attempt
    assert len(otp_posts(deriv_server)) == 2
    conn.close()


def test_two_401s_in_a_row_fail_the_attempt(deriv_server: LocalServer) -> None:
    with LocalServer(pats=[PAT], otp_ttl=0.001) as server:  # every OTP expires at once
        rest = rest_for(server)
        conn = options(server, rest)
        with pytest.raises(ConnectError) as info:
            conn.connect(timeout=5)
        assert info.value.status == 401
        assert len(otp_posts(server)) == 2  # one new OTP, then the attempt failed


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_rest_refusal_ends_the_connection_without_more_rest_calls(
    deriv_server: LocalServer, status: int
) -> None:
    rest = rest_for(deriv_server)
    account = demo_account(rest)
    conn = Connection.options(account, rest=rest, keepalive_interval=None, reconnect_delay=0.02)
    events = Events(conn)
    conn.connect(timeout=5)
    calls = len(deriv_server.rest_requests)
    deriv_server.refuse(1, status)  # the OTP call of the reconnect
    deriv_server.drop()
    final = events.wait("close", will_reconnect=False)[0]
    assert final.code == 1006
    (error,) = [e.error for e in events.of("error")]
    assert isinstance(error, ConnectError) and isinstance(error.__cause__, RestError)
    assert error.__cause__.status == status
    time.sleep(0.2)  # only to show that no further REST call is made
    assert len(deriv_server.rest_requests) == calls + 1
    assert conn.ready_state == Connection.CLOSED


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_retryable_rest_error_is_retried_with_backoff(
    deriv_server: LocalServer, status: int
) -> None:
    rest = rest_for(deriv_server)
    conn = options(deriv_server, rest)
    events = Events(conn)
    conn.connect(timeout=5)
    deriv_server.refuse(2, status)
    deriv_server.drop()
    events.wait("open", count=2)
    errors = [e.error for e in events.of("error")]
    assert len(errors) == 2
    assert all(isinstance(e.__cause__, RestError) and e.__cause__.status == status for e in errors)
    conn.close()


def test_connect_timeout_raises_a_connect_error_caused_by_the_rest_error(
    deriv_server: LocalServer,
) -> None:
    rest = rest_for(deriv_server)
    conn = options(deriv_server, rest)
    deriv_server.refuse(1, 403)
    with pytest.raises(ConnectError) as info:
        conn.connect(timeout=5)
    assert isinstance(info.value.__cause__, RestError) and info.value.__cause__.status == 403
    assert conn.ready_state == Connection.CLOSED


def test_close_interrupts_a_rest_call_in_flight() -> None:
    accepted = threading.Event()

    def never_answers(peer: Peer) -> None:
        peer.read_head()
        accepted.set()
        peer.sock.recv(1)

    with RawServer(never_answers) as server:
        rest = RestClient(APP_ID, PAT, base_url=f"http://127.0.0.1:{server.port}", timeout=30)
        conn = Connection.options("DOT1", rest=rest, keepalive_interval=None)
        conn.connect()
        assert accepted.wait(5)  # the OTP call is in flight
        started = time.monotonic()
        conn.close()
        assert time.monotonic() - started < 1.5 and conn.ready_state == Connection.CLOSED


def test_no_secret_anywhere(deriv_server: LocalServer, caplog: pytest.LogCaptureFixture) -> None:
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        rest = rest_for(deriv_server)
        conn = options(deriv_server, rest)
        events = Events(conn)
        conn.connect(timeout=5)
        conn.request({"balance": 1})
        deriv_server.refuse(1, 503)
        deriv_server.drop()
        events.wait("open", count=2)
        texts += [repr(conn), str(conn.url), repr(rest)]
        texts += [repr(e) for e in events.items] + [str(e.error) for e in events.of("error")]
        deriv_server.refuse(1, 401)
        deriv_server.drop()
        events.wait("close", will_reconnect=False)
        texts += [repr(e) for e in events.items] + [str(e.error) for e in events.of("error")]
        texts += [repr(e.error.__cause__) for e in events.of("error")]
    texts.append(caplog.text)
    secrets = [h["otp"] for h in deriv_server.handshakes if h["otp"]] + [PAT]
    assert len(secrets) >= 3
    leaks = [s for s in secrets for text in texts if s in text]
    assert leaks == []


def test_a_whole_demo_trade_on_the_new_api(deriv_server: LocalServer) -> None:
    rest = rest_for(deriv_server)
    with options(deriv_server, rest) as conn:
        balances: list[dict[str, Any]] = []
        transactions: list[dict[str, Any]] = []
        conn.subscribe({"balance": 1}, balances.append)
        conn.subscribe({"transaction": 1}, transactions.append)
        proposal = conn.request(
            {
                "proposal": 1,
                "amount": 10,
                "basis": "stake",
                "contract_type": "CALL",
                "currency": "USD",
                "duration": 2,
                "duration_unit": "t",
                "underlying_symbol": "R_100",
            }
        )["proposal"]
        bought = conn.request({"buy": proposal["id"], "price": 10})["buy"]
        done = threading.Event()
        updates: list[dict[str, Any]] = []

        def on_update(message: dict[str, Any]) -> None:
            updates.append(message["proposal_open_contract"])
            if message["proposal_open_contract"].get("is_sold"):
                done.set()

        ended = threading.Event()
        conn.subscribe(
            {"proposal_open_contract": 1, "contract_id": bought["contract_id"]},
            on_update,
            on_end=lambda sub: ended.set(),
        )
        assert done.wait(10) and ended.wait(5)
        assert isinstance(updates[-1]["sell_price"], str)  # money fields are strings here
        assert wait_until(lambda: len(transactions) >= 3)  # subscribe reply, buy, sell
        actions = [t["transaction"].get("action") for t in transactions[1:]]
        assert actions[:2] == ["buy", "sell"]
        expected = round(10000 - float(bought["buy_price"]) + float(updates[-1]["sell_price"]), 2)
        assert wait_until(lambda: float(balances[-1]["balance"]["balance"]) == expected)


def test_invalid_app_id_that_is_not_a_number_names_connection_options(
    deriv_server: LocalServer,
) -> None:
    url = deriv_server.url.replace("app_id=1089", "app_id=k7Jd2Xq8mNpR4vTwYzB6c")
    conn = Connection(url=url, keepalive_interval=None)
    conn.connect(timeout=5)
    with pytest.raises(Exception) as info:
        conn.request({"ping": 1})
    assert "Connection.options" in str(info.value)
    conn.close()


def test_health_sends_the_token_too() -> None:
    heads: list[bytes] = []

    def answer(peer: Peer) -> None:
        heads.append(peer.read_head())
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK")

    with RawServer(answer) as server:
        rest = RestClient(APP_ID, PAT, base_url=f"http://127.0.0.1:{server.port}")
        assert rest.health() is True
    assert b"Authorization: Bearer " + PAT.encode() in heads[0]
    assert b"Deriv-App-ID: " + APP_ID.encode() in heads[0]


def test_options_url_and_endpoint_together_are_a_value_error() -> None:
    with pytest.raises(ValueError, match="url="):
        Connection.options(url="ws://127.0.0.1:1/x", endpoint="other.example")


def test_an_empty_options_url_is_a_value_error_as_for_connection() -> None:
    # Regression: url="" quietly meant Deriv's public socket, where Connection(url="") raises.
    with pytest.raises(ValueError, match="ws://"):
        Connection.options(url="")
