"""The new API's REST endpoints on LocalServer, with plain http.client clients: statuses,
Deriv's envelopes (every body validated against the official schemas), credentials, and the
HTTP/1.1 handling on the shared port (keep-alive, close, bounds)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from deriv_sdk.testing import LocalServer, front
from deriv_sdk.testing.pats import derive_account_id
from tests.server_helpers import (
    APP_ID,
    PAT,
    Rest,
    assert_rest_valid,
    deriv_example,
    options_server,
    options_validator,
    without_timing,
)

__all__ = ["options_server"]  # fixtures

pytestmark = pytest.mark.timeout(30)

ACCOUNTS = "/trading/v1/options/accounts"
NEW_ACCOUNT = {"currency": "USD", "group": "row", "account_type": "demo"}


def test_health_is_plain_ok_without_credentials(options_server: LocalServer) -> None:
    rest = Rest(options_server, pat=None, app_id=None)
    status, headers, body = rest.call("GET", "/v1/health")
    assert (status, body) == (200, "OK")
    assert headers["Content-Type"].startswith("text/plain")
    assert not list(options_validator("health_response").iter_errors(body))
    rest.close()


def test_accounts_of_a_pat(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    accounts = rest.accounts()
    assert accounts == [
        {
            "account_id": derive_account_id(PAT),
            "balance": 10000,
            "currency": "USD",
            "group": "row",
            "status": "active",
            "account_type": "demo",
        }
    ]
    _, _, body = rest.call("GET", ACCOUNTS)
    assert body["meta"]["endpoint"] == "/accounts" and body["meta"]["method"] == "GET"
    rest.close()


def test_account_ids_are_the_same_in_every_process() -> None:
    code = "from deriv_sdk.testing.pats import derive_account_id as d; print(d('pat-xyz'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == derive_account_id("pat-xyz")
    assert out.stdout.strip().startswith("DOT") and len(out.stdout.strip()) == 11
    assert derive_account_id("pat-xyz") != derive_account_id("pat-xyw")


def test_create_account_200_when_it_exists_201_when_created(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    status, _, body = rest.call("POST", ACCOUNTS, NEW_ACCOUNT)
    assert status == 200
    assert_rest_valid("create_account", status, body)
    assert isinstance(body["data"], dict)
    assert body["data"]["account_id"] == derive_account_id(PAT)
    status, _, body = rest.call("POST", ACCOUNTS, {**NEW_ACCOUNT, "account_type": "real"})
    assert status == 201
    assert_rest_valid("create_account", status, body)
    assert isinstance(body["data"], list) and len(body["data"]) == 1
    real = body["data"][0]
    assert real["account_type"] == "real" and real["balance"] == 0
    assert real["account_id"].startswith("DOT") and real["account_id"] != derive_account_id(PAT)
    assert body["meta"] == {**body["meta"], "endpoint": "/accounts", "method": "POST"}
    status, _, again = rest.call("POST", ACCOUNTS, {**NEW_ACCOUNT, "account_type": "real"})
    assert status == 200 and again["data"] == real
    assert {a["account_id"] for a in rest.accounts()} == {
        derive_account_id(PAT),
        real["account_id"],
    }
    rest.close()


NOT_AN_OBJECT = "The request body must be a JSON object"


@pytest.mark.parametrize(
    ("body", "code", "message", "field"),
    [
        (
            {"group": "row", "account_type": "demo"},
            "FieldIsRequired",
            "currency field is required",
            "currency",
        ),
        (
            {"currency": "USD", "account_type": "demo"},
            "FieldIsRequired",
            "group field is required",
            "group",
        ),
        (
            {**NEW_ACCOUNT, "currency": "EUR"},
            "ValidationError",
            "currency must be one of: USD",
            "currency",
        ),
        (
            {**NEW_ACCOUNT, "account_type": "x"},
            "ValidationError",
            "account_type must be one of: demo, real",
            "account_type",
        ),
        (b"not json", "BadInputRequest", NOT_AN_OBJECT, None),
        ([1, 2], "BadInputRequest", NOT_AN_OBJECT, None),
    ],
)
def test_create_account_validation(
    options_server: LocalServer, body: Any, code: str, message: str, field: str | None
) -> None:
    rest = Rest(options_server)
    status, _, reply = rest.call("POST", ACCOUNTS, body)
    assert status == 400
    assert_rest_valid("create_account", status, reply)
    error = reply["errors"][0]
    assert (error["code"], error["message"], error.get("field")) == (code, message, field)
    rest.close()


def test_create_account_needs_json_content_type(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    status, _, reply = rest.call(
        "POST", ACCOUNTS, json.dumps(NEW_ACCOUNT).encode(), {"Content-Type": "text/plain"}
    )
    assert status == 400 and reply["errors"][0]["field"] == "Content-Type"
    rest.close()


def test_otp_url_points_back_at_this_server(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    status, _, reply = rest.call("POST", f"{ACCOUNTS}/{derive_account_id(PAT)}/otp")
    assert status == 200
    assert_rest_valid("websocket", status, reply)
    assert set(reply) == {"data", "meta"} and set(reply["data"]) == {"url"}
    prefix = f"ws://127.0.0.1:{options_server.port}/trading/v1/options/ws/demo?otp="
    assert reply["data"]["url"].startswith(prefix)
    assert len(reply["data"]["url"]) > len(prefix) + 16
    assert reply["meta"]["endpoint"] == f"/accounts/{derive_account_id(PAT)}/otp"
    _, _, real = rest.call("POST", ACCOUNTS, {**NEW_ACCOUNT, "account_type": "real"})
    status, _, reply = rest.call("POST", f"{ACCOUNTS}/{real['data'][0]['account_id']}/otp")
    assert reply["data"]["url"].startswith(
        f"ws://127.0.0.1:{options_server.port}/trading/v1/options/ws/real?otp="
    )
    rest.close()


def test_reset_demo_balance(options_server: LocalServer) -> None:
    demo = derive_account_id(PAT)
    with options_server.lock:
        options_server.pats[PAT][0].balance = 123.45
    rest = Rest(options_server)
    status, _, reply = rest.call("POST", f"{ACCOUNTS}/{demo}/reset-demo-balance")
    assert status == 200
    assert_rest_valid("reset_demo_balance", status, reply)
    assert reply["data"] == {
        "account_id": demo,
        "balance": 10000,
        "currency": "USD",
        "status": "active",
        "account_type": "demo",
    }
    assert rest.accounts()[0]["balance"] == 10000
    rest.close()


def test_reset_on_a_real_account_is_deriv_400(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    _, _, created = rest.call("POST", ACCOUNTS, {**NEW_ACCOUNT, "account_type": "real"})
    real = created["data"][0]["account_id"]
    status, _, reply = rest.call("POST", f"{ACCOUNTS}/{real}/reset-demo-balance")
    assert status == 400
    assert_rest_valid("reset_demo_balance", status, reply)
    expected = without_timing(deriv_example("rest.reset-demo-balance.400.json"))
    expected["meta"]["endpoint"] = f"/accounts/{real}/reset-demo-balance"
    assert without_timing(reply) == expected
    rest.close()


def test_unknown_accounts(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    other = derive_account_id("someone-else")
    status, _, reply = rest.call("POST", f"{ACCOUNTS}/{other}/reset-demo-balance")
    assert status == 404
    assert_rest_valid("reset_demo_balance", status, reply)
    assert reply["errors"][0]["code"] == "AccountNotFound"
    assert reply["errors"][0]["message"] == "Resource not found"
    status, _, reply = rest.call("POST", f"{ACCOUNTS}/INVALID/otp")
    assert status == 400
    assert_rest_valid("websocket", status, reply)
    assert reply["errors"][0]["code"] == "ValidationError"
    assert reply["errors"][0]["message"] == "Invalid account ID format"
    status, _, reply = rest.call("POST", f"{ACCOUNTS}/{other}/otp")  # not this user's
    assert status == 400 and reply["errors"][0]["code"] == "ValidationError"
    rest.close()


NO_APP_ID = "Deriv-App-ID header is required for PAT tokens"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Invalid or missing authentication credentials"),
        ({"Authorization": "Basic abc"}, "Invalid or missing authentication credentials"),
        ({"Authorization": "Bearer "}, "Invalid or missing authentication credentials"),
        ({"Authorization": "Bearer not-a-pat"}, "Invalid or expired token"),
        ({"Authorization": f"Bearer {PAT}"}, NO_APP_ID),
        ({"Authorization": f"Bearer {PAT}", "Deriv-App-ID": " "}, NO_APP_ID),
    ],
)
@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("GET", ACCOUNTS, "get_accounts"),
        ("POST", ACCOUNTS, "create_account"),
        ("POST", f"{ACCOUNTS}/DOT1/otp", "websocket"),
        ("POST", f"{ACCOUNTS}/DOT1/reset-demo-balance", "reset_demo_balance"),
    ],
)
def test_401_without_valid_credentials(
    options_server: LocalServer,
    headers: dict[str, str],
    message: str,
    method: str,
    path: str,
    name: str,
) -> None:
    rest = Rest(options_server, pat=None, app_id=None)
    status, _, reply = rest.call(method, path, NEW_ACCOUNT if method == "POST" else None, headers)
    assert status == 401
    assert_rest_valid(name, status, reply)
    assert reply["errors"][0]["code"] == "Unauthorized"
    assert reply["errors"][0]["message"] == message
    rest.close()


def test_any_non_empty_app_id_goes(options_server: LocalServer) -> None:
    for app_id in ("1089", "k7Jd2Xq8mNpR4vTwYzB6c", "x"):
        rest = Rest(options_server, app_id=app_id)
        assert len(rest.accounts()) == 1
        rest.close()


def test_unknown_path_and_method(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    for path in ("/", "/trading/v1/options/nope", f"{ACCOUNTS}/", "/websockets/v3"):
        status, _, reply = rest.call("GET", path)
        assert status == 404, path
        assert_rest_valid("get_accounts", status, reply)
        assert reply["errors"][0]["code"] == "NotFound"
        assert reply["meta"]["endpoint"] == path
    status, headers, reply = rest.call("DELETE", ACCOUNTS)
    assert status == 405 and headers["Allow"] == "GET, POST"
    assert_rest_valid("get_accounts", status, reply)
    status, headers, reply = rest.call("GET", f"{ACCOUNTS}/DOT1/otp")
    assert status == 405 and headers["Allow"] == "POST"
    status, _, reply = rest.call("GET", "/trading/v1/options/ws/public")  # not an upgrade
    assert status == 400 and reply["errors"][0]["code"] == "ValidationError"
    rest.close()


def test_dict_pats_with_several_accounts() -> None:
    pats = {
        "pat-a": [
            {"account_id": "DOT11111111", "balance": 50.5},
            {"account_id": "DOT22222222", "account_type": "real", "balance": 7},
        ],
        "pat-b": [],
    }
    with LocalServer(pats=pats) as srv:
        rest = Rest(srv, "pat-a")
        accounts = rest.accounts()
        assert [(a["account_id"], a["balance"], a["account_type"]) for a in accounts] == [
            ("DOT11111111", 50.5, "demo"),
            ("DOT22222222", 7, "real"),
        ]
        rest.close()
        rest = Rest(srv, "pat-b")
        assert rest.accounts() == []
        status, _, created = rest.call("POST", ACCOUNTS, NEW_ACCOUNT)
        assert status == 201 and created["data"][0]["balance"] == 10000
        rest.close()
    with pytest.raises(ValueError):
        LocalServer(pats={"p": [{"nickname": "x"}]})
    with pytest.raises(ValueError):
        LocalServer(pats={"p": [{"account_type": "paper"}]})
    with pytest.raises(ValueError):
        LocalServer(pats={"p": [{"account_id": "DOT1"}], "q": [{"account_id": "DOT1"}]})
    with pytest.raises(ValueError):
        LocalServer(otp_ttl=0)


# -- HTTP/1.1 on the shared port -------------------------------------------------------------


def test_keep_alive_many_requests_on_one_connection(options_server: LocalServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", options_server.port, timeout=5)
    headers = {"Authorization": f"Bearer {PAT}", "Deriv-App-ID": APP_ID}
    conn.connect()
    local = conn.sock.getsockname()
    for _ in range(20):
        conn.request("GET", ACCOUNTS, headers=headers)
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Connection") == "keep-alive"
        json.loads(response.read())
        assert conn.sock is not None and conn.sock.getsockname() == local  # same connection
    conn.request("GET", "/v1/health", headers={"Connection": "close"})
    response = conn.getresponse()
    assert response.read() == b"OK" and response.getheader("Connection") == "close"
    assert response.will_close
    conn.close()
    assert len(options_server.rest_requests) == 21


def test_http_10_and_pipelining(options_server: LocalServer) -> None:
    with socket.create_connection(("127.0.0.1", options_server.port), timeout=5) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/health HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.endswith(b"Connection: close\r\n\r\nOK")  # 1.0 without keep-alive: closed


def eof_or_reset(sock: socket.socket) -> bool:
    """Whether the peer closed ``sock`` (EOF or a reset), without sending anything."""
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def _raw(server: LocalServer, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(data)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    return out


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"POST /trading/v1/options/accounts HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"POST /trading/v1/options/accounts HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST /trading/v1/options/accounts HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * (front.MAX_HEAD + 10) + b"\r\n\r\n", 431),
    ],
)
def test_bad_requests_get_an_error_and_the_connection_closes(
    options_server: LocalServer, data: bytes, status: int
) -> None:
    reply = _raw(options_server, data)
    assert reply.startswith(f"HTTP/1.1 {status} ".encode()), reply[:100]
    assert b"Connection: close" in reply
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert body["errors"][0]["status"] == status


def test_slow_requests_do_not_pin_a_thread(
    options_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(front, "HEAD_TIMEOUT", 0.3)
    monkeypatch.setattr(front, "BODY_TIMEOUT", 0.3)
    started = time.monotonic()
    reply = _raw(options_server, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # never ends
    assert reply.startswith(b"HTTP/1.1 408 ")
    reply = _raw(options_server, b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 3
    with socket.create_connection(("127.0.0.1", options_server.port), timeout=5) as sock:
        assert sock.recv(10) == b""  # silent client: closed without an answer


def test_idle_keep_alive_connection_is_closed(
    options_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(front, "KEEPALIVE_TIMEOUT", 0.3)
    with socket.create_connection(("127.0.0.1", options_server.port), timeout=5) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"OK"):
            data += sock.recv(4096)
        assert b"keep-alive" in data
        assert sock.recv(10) == b""  # closed after the idle time, without a response


def test_stop_ends_idle_and_slow_http_connections() -> None:
    srv = LocalServer(pats=[PAT]).start()
    idle = Rest(srv)
    idle.accounts()  # then kept alive, idle
    slow = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    slow.sendall(b"GET /v1/health HTTP/1.1\r\n")  # half a head
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 2
    assert eof_or_reset(slow)
    slow.close()
    idle.close()


def test_https_rest_and_wss_on_one_port() -> None:
    trustme = pytest.importorskip("trustme")
    import ssl

    import websocket

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with LocalServer(ssl_context=server_context, pats=[PAT], tokens=["t"]) as srv:
        assert srv.rest_url == f"https://127.0.0.1:{srv.port}"
        assert srv.options_url.startswith("wss://127.0.0.1:")
        rest = Rest(srv, context=client_context)
        demo = rest.accounts()[0]["account_id"]
        url = rest.otp_url(demo)
        assert url.startswith(f"wss://127.0.0.1:{srv.port}/trading/v1/options/ws/demo?otp=")
        status, _, body = rest.call("GET", "/v1/health")
        assert (status, body) == (200, "OK")
        rest.close()
        ws = websocket.create_connection(url, timeout=5, sslopt={"context": client_context})
        ws.send(json.dumps({"balance": 1}))
        assert json.loads(ws.recv())["balance"]["loginid"] == demo
        ws.close()
        ws = websocket.create_connection(srv.url, timeout=5, sslopt={"context": client_context})
        ws.send(json.dumps({"authorize": "t"}))
        assert "authorize" in json.loads(ws.recv())
        ws.close()
        plain = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)  # no TLS: dropped
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            plain.request("GET", "/v1/health")
            plain.getresponse()
        plain.close()


def test_urllib_works_against_it(options_server: LocalServer) -> None:
    import urllib.error
    import urllib.request

    base = options_server.rest_url
    with urllib.request.urlopen(f"{base}/v1/health", timeout=5) as response:
        assert response.status == 200 and response.read() == b"OK"
    request = urllib.request.Request(
        f"{base}/trading/v1/options/accounts",
        data=json.dumps(NEW_ACCOUNT).encode(),
        headers={
            "Authorization": f"Bearer {PAT}",
            "Deriv-App-ID": APP_ID,
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        assert json.loads(response.read())["data"]["account_type"] == "demo"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{base}/trading/v1/options/accounts", timeout=5)
    assert info.value.code == 401
    assert json.loads(info.value.read())["errors"][0]["code"] == "Unauthorized"
    info.value.close()


def test_head_of_health(options_server: LocalServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", options_server.port, timeout=5)
    conn.request("HEAD", "/v1/health")
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Length") == "2"
    assert response.read() == b""
    conn.request("GET", "/v1/health")  # the connection is still in step
    assert conn.getresponse().read() == b"OK"
    conn.close()
