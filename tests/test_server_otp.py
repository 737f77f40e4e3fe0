"""The new API's WebSocket handshakes: OTPs single use, valid ``otp_ttl`` seconds, bound to one
account and one path (demo/real); Deriv's 400/401 bodies; the public socket needs nothing."""

from __future__ import annotations

import json

import pytest
import websocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from deriv_sdk.testing import LocalServer
from deriv_sdk.testing.pats import derive_account_id
from tests.server_helpers import (
    PAT,
    OptionsClient,
    Rest,
    assert_rest_valid,
    deriv_example,
    options_server,
    without_timing,
)

__all__ = ["options_server"]  # fixtures

pytestmark = pytest.mark.timeout(30)

DEMO = derive_account_id(PAT)


def refused(url: str) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of a refused handshake (websockets' client)."""
    with pytest.raises(InvalidStatus) as info, connect(url, open_timeout=5):
        pass
    response = info.value.response
    return response.status_code, dict(response.headers.raw_items()), response.body


def test_an_otp_opens_the_demo_socket_of_its_account(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    url = rest.otp_url(DEMO)
    c = OptionsClient(url)
    reply = c.request({"balance": 1})
    assert reply["balance"] == {"balance": 10000, "currency": "USD", "loginid": DEMO}
    c.close()
    rest.close()
    otp = url.split("otp=", 1)[1]
    assert options_server.handshakes[-1] == {
        "api": "options",
        "path": "/trading/v1/options/ws/demo",
        "status": 101,
        "otp": otp,
    }


def test_an_otp_works_once(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    url = rest.otp_url(DEMO)
    rest.close()
    OptionsClient(url).close()
    status, headers, body = refused(url)
    assert status == 401
    assert headers["Content-Type"] == "application/json"
    assert_rest_valid("websocket", status, json.loads(body))
    assert without_timing(json.loads(body)) == without_timing(
        deriv_example("ws.handshake.demo.401.json")
    )
    assert [h["status"] for h in options_server.handshakes] == [101, 401]


def test_an_otp_expires_after_otp_ttl(options_server: LocalServer) -> None:
    now = [1000.0]
    options_server.state.otps.clock = lambda: now[0]  # time, mocked
    rest = Rest(options_server)
    late = rest.otp_url(DEMO)
    in_time = rest.otp_url(DEMO)
    rest.close()
    now[0] += 119.9
    OptionsClient(in_time).close()  # still valid just before 120 s
    now[0] += 0.2
    status, _, body = refused(late)
    assert status == 401
    assert json.loads(body)["errors"][0]["message"] == "Invalid or expired OTP token"


def test_a_tiny_otp_ttl() -> None:
    with LocalServer(pats=[PAT], otp_ttl=0.05) as srv:
        now = [0.0]
        srv.state.otps.clock = lambda: now[0]
        rest = Rest(srv)
        url = rest.otp_url(DEMO)
        rest.close()
        now[0] = 0.05
        assert refused(url)[0] == 401


def test_an_otp_on_the_wrong_path_is_401(options_server: LocalServer) -> None:
    rest = Rest(options_server)
    _, _, created = rest.call(
        "POST",
        "/trading/v1/options/accounts",
        {"currency": "USD", "group": "row", "account_type": "real"},
    )
    real = created["data"][0]["account_id"]
    real_url = rest.otp_url(real)
    assert "/ws/real?otp=" in real_url
    demo_url = rest.otp_url(DEMO)
    rest.close()
    status, _, body = refused(real_url.replace("/ws/real?", "/ws/demo?"))
    assert status == 401
    status, _, body = refused(demo_url.replace("/ws/demo?", "/ws/real?"))
    assert status == 401
    expected = without_timing(deriv_example("ws.handshake.demo.401.json"))
    expected["meta"]["endpoint"] = "/trading/v1/options/ws/real"
    assert without_timing(json.loads(body)) == expected
    # Presented once, spent: the right path does not take it any more.
    assert refused(demo_url)[0] == 401


@pytest.mark.parametrize("kind", ["demo", "real"])
@pytest.mark.parametrize("query", ["", "?otp=", "?app_id=1"])
def test_a_missing_otp_is_400(options_server: LocalServer, kind: str, query: str) -> None:
    base = options_server.options_url.replace("/ws/public", f"/ws/{kind}")
    status, headers, body = refused(base + query)
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert_rest_valid("websocket", status, json.loads(body))
    expected = without_timing(deriv_example("ws.handshake.demo.400.json"))
    expected["meta"]["endpoint"] = f"/trading/v1/options/ws/{kind}"
    assert without_timing(json.loads(body)) == expected


def test_unknown_otp_is_401_with_websocket_client(options_server: LocalServer) -> None:
    url = options_server.options_url.replace("/ws/public", "/ws/demo?otp=nope")
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(url, timeout=5)
    assert info.value.status_code == 401
    assert json.loads(info.value.resp_body)["errors"][0]["code"] == "Unauthorized"


def test_public_socket_needs_nothing_and_takes_an_app_id(options_server: LocalServer) -> None:
    for url in (options_server.options_url, options_server.options_url + "?app_id=abc"):
        c = OptionsClient(url)
        assert c.request({"ping": 1})["ping"] == "pong"
        c.close()
    assert [h["otp"] for h in options_server.handshakes] == [None, None]
    assert {h["api"] for h in options_server.handshakes} == {"options"}


def test_unknown_socket_path_is_404(options_server: LocalServer) -> None:
    status, _, body = refused(options_server.options_url.replace("/public", "/private"))
    assert status == 404
    assert_rest_valid("websocket", status, json.loads(body))


def test_otps_are_per_account_and_per_user() -> None:
    pats = {"pat-a": [{"account_id": "DOT10000001"}], "pat-b": [{"account_id": "DOT10000002"}]}
    with LocalServer(pats=pats) as srv:
        a, b = Rest(srv, "pat-a"), Rest(srv, "pat-b")
        status, _, _ = a.call("POST", "/trading/v1/options/accounts/DOT10000002/otp")
        assert status == 400  # not pat-a's account
        url = b.otp_url("DOT10000002")
        c = OptionsClient(url)
        assert c.request({"balance": 1})["balance"]["loginid"] == "DOT10000002"
        c.close()
        a.close()
        b.close()
