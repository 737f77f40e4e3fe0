"""Each fault control of LocalServer, shown with plain websocket-client / websockets clients."""

from __future__ import annotations

import json
import time

import pytest
import websocket
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

from deriv_sdk.testing import LocalServer
from tests.server_helpers import TOKEN, Client, client, server

__all__ = ["client", "server"]  # fixtures

pytestmark = pytest.mark.timeout(30)


def test_drop_closes_without_close_frame_websocket_client(server: LocalServer) -> None:
    c = Client(server.url)
    assert c.request({"ping": 1})["ping"] == "pong"
    server.drop()
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        while True:  # messages already in flight may come first
            c.ws.recv()


def test_drop_closes_without_close_frame_websockets(server: LocalServer) -> None:
    with connect(server.url, open_timeout=5) as ws:
        ws.send(json.dumps({"ticks": "R_50", "subscribe": 1}))
        ws.recv(timeout=5)
        server.drop()
        with pytest.raises(ConnectionClosedError) as info:
            while True:
                ws.recv(timeout=5)
        assert info.value.rcvd is None  # no close frame from the server


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4000, "maintenance"), (1011, "oops")])
def test_close_all_with_code_and_reason(server: LocalServer, code: int, reason: str) -> None:
    with connect(server.url, open_timeout=5) as ws:
        ws.send(json.dumps({"ping": 1}))
        ws.recv(timeout=5)
        server.close_all(code, reason)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == code
        assert info.value.rcvd.reason == reason


def test_close_all_with_websocket_client(server: LocalServer) -> None:
    c = Client(server.url)
    c.request({"ping": 1})
    server.close_all(4001, "bye")
    opcode, data = c.ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(data[:2], "big") == 4001 and data[2:] == b"bye"
    c.ws.send_close()  # answer the closing handshake, so that the server need not wait
    c.ws.shutdown()


def test_stall_and_resume(server: LocalServer, client: Client) -> None:
    client.request({"ticks": "R_10", "subscribe": 1})
    server.stall()
    # Drain what was already on its way, then silence: no ticks, no pong.
    client.ws.settimeout(0.3)
    with pytest.raises(websocket.WebSocketTimeoutException):
        while True:
            client.ws.recv()
    client.send({"ping": 1, "req_id": 99})
    client.ws.settimeout(0.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        client.ws.recv()
    assert server.requests[-1] == {"ping": 1, "req_id": 99}  # received, held
    server.resume()
    pong = client.wait_for(lambda m: m.get("req_id") == 99, timeout=5)
    assert pong["ping"] == "pong"
    client.wait_for(lambda m: m.get("msg_type") == "tick", timeout=5)  # ticks again


def test_delay(server: LocalServer, client: Client) -> None:
    server.delay(0.5)
    started = time.monotonic()
    assert client.request({"ping": 1})["ping"] == "pong"
    assert time.monotonic() - started >= 0.45
    server.delay(0)
    started = time.monotonic()
    client.request({"ping": 1})
    assert time.monotonic() - started < 0.4


def test_send_malformed(server: LocalServer, client: Client) -> None:
    other = Client(server.url)
    client.request({"ping": 1})
    other.request({"ping": 1})
    server.send_malformed()
    for c in (client, other):
        c.ws.settimeout(5)
        text = c.ws.recv()
        with pytest.raises(ValueError):
            json.loads(text)
        assert c.request({"ping": 1})["ping"] == "pong"  # still usable
    other.close()


def test_refuse_three_handshakes(server: LocalServer) -> None:
    server.refuse(3, 503)
    for _ in range(3):
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(server.url, timeout=5)
        assert info.value.status_code == 503
    c = Client(server.url)
    assert c.request({"ping": 1})["ping"] == "pong"
    c.close()


def test_refuse_with_websockets_client_and_other_status(server: LocalServer) -> None:
    server.refuse(1, status=429)
    with pytest.raises(InvalidStatus) as info, connect(server.url, open_timeout=5):
        pass
    assert info.value.response.status_code == 429
    with connect(server.url, open_timeout=5) as ws:
        ws.send('{"ping": 1}')
        assert json.loads(ws.recv(timeout=5))["ping"] == "pong"


def test_rate_limits() -> None:
    with LocalServer(tokens=[TOKEN], rate_limits={"ping": 3}) as srv:
        c = Client(srv.url)
        for _ in range(3):
            assert c.request({"ping": 1})["ping"] == "pong"
        reply = c.request({"ping": 1, "req_id": 5})
        assert reply["error"]["code"] == "RateLimit"
        assert reply["msg_type"] == "ping" and reply["req_id"] == 5
        assert "time" in c.request({"time": 1})  # other calls are not limited
        other = Client(srv.url)  # per connection
        assert other.request({"ping": 1})["ping"] == "pong"
        other.close()
        c.close()


@pytest.mark.parametrize("query", ["", "?l=EN", "?app_id=abc&l=EN"])
def test_invalid_app_id(server: LocalServer, query: str) -> None:
    url = f"ws://127.0.0.1:{server.port}/websockets/v3{query}"
    with connect(url, open_timeout=5) as ws:  # the handshake succeeds
        ws.send(json.dumps({"ticks": "R_50", "subscribe": 1, "req_id": 3}))
        reply = json.loads(ws.recv(timeout=5))
        assert reply["error"]["code"] == "InvalidAppID"
        assert reply["msg_type"] == "tick" and reply["req_id"] == 3
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008


def test_wss_with_ssl_context() -> None:
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with LocalServer(ssl_context=server_context) as srv:
        assert srv.url.startswith("wss://127.0.0.1:")
        with connect(srv.url, ssl=client_context, open_timeout=5) as ws:
            ws.send('{"ping": 1}')
            assert json.loads(ws.recv(timeout=5))["ping"] == "pong"
            srv.drop()
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)


def test_close_all_rejects_codes_that_cannot_be_sent(server: LocalServer) -> None:
    for code in (999, 1005, 1006, 2000, 5000):
        with pytest.raises(ValueError):
            server.close_all(code)
    with pytest.raises(ValueError):
        server.close_all(4000, "x" * 124)


def test_close_all_while_stalled(server: LocalServer) -> None:
    with connect(server.url, open_timeout=5) as ws:
        ws.send(json.dumps({"ping": 1}))
        ws.recv(timeout=5)
        server.stall()
        ws.send(json.dumps({"ping": 1}))  # held
        server.close_all(4002, "stalled")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4002
    server.resume()


def test_requests_held_by_a_stall_are_discarded_when_dropped(server: LocalServer) -> None:
    c = Client(server.url)
    c.request({"authorize": TOKEN})
    server.stall()
    parameters = {
        "amount": 10,
        "basis": "stake",
        "contract_type": "CALL",
        "currency": "USD",
        "duration": 5,
        "duration_unit": "t",
        "symbol": "R_10",
    }
    c.send({"buy": "1", "price": 10, "parameters": parameters, "req_id": 5})
    deadline = time.monotonic() + 5
    while not any(r.get("req_id") == 5 for r in server.requests):  # received, held
        assert time.monotonic() < deadline
        time.sleep(0.01)
    server.drop()
    server.resume()  # at once: the held buy must not run for the dropped connection
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        while True:
            c.ws.recv()
    other = Client(server.url)
    other.request({"authorize": TOKEN})
    assert other.request({"balance": 1})["balance"]["balance"] == 10000
    assert other.request({"portfolio": 1})["portfolio"]["contracts"] == []
    other.close()
