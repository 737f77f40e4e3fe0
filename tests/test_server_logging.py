"""DEBUG logging on the root logger never puts a token, PAT or OTP in a log record of the
server (websockets logs every frame at DEBUG unless it is told not to)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import websocket

from deriv_sdk.testing import LocalServer
from deriv_sdk.testing.logs import QuietLogger
from tests.server_helpers import Client, OptionsClient, Rest

pytestmark = pytest.mark.timeout(30)

SECRET_TOKEN = "SeCrEtToKeN0123456789abcdef"
SECRET_PAT = "pat_SeCrEtPaT0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefgh"


def _texts(records: list[logging.LogRecord]) -> list[str]:
    """Everything a handler could print of each record: the message and any exception."""
    formatter = logging.Formatter()
    out = []
    for record in records:
        text = record.getMessage()
        if record.exc_info:
            text += formatter.formatException(record.exc_info)
        if record.stack_info:
            text += record.stack_info
        out.append(f"{record.name}: {text}")
    return out


def assert_no_secret(records: list[logging.LogRecord], *secrets: str) -> None:
    texts = _texts(records)
    for secret in secrets:
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"secret in the log: {leaks[:3]}"


def test_authorize_at_debug_logs_no_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with LocalServer(tokens=[SECRET_TOKEN]) as srv:
        c = Client(srv.url)
        reply = c.request({"authorize": SECRET_TOKEN})
        assert reply["authorize"]["loginid"].startswith("VRTC")
        assert reply["echo_req"]["authorize"] == "<not shown>"
        c.request({"ping": 1})
        c.close()
    names = {r.name for r in caplog.records}
    assert "deriv_sdk.testing" in names  # the server did log (listening, stopped)
    assert "deriv_sdk.testing.websockets" in names  # and websockets through its logger
    assert_no_secret(caplog.records, SECRET_TOKEN)


def test_rest_with_a_pat_and_otp_handshakes_at_debug_log_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with LocalServer(pats=[SECRET_PAT], tokens=[SECRET_TOKEN]) as srv:
        rest = Rest(srv, SECRET_PAT)
        account_id = rest.accounts()[0]["account_id"]
        url = rest.otp_url(account_id)
        status, _, _ = rest.call(
            "GET", "/trading/v1/options/accounts", headers={"Deriv-App-ID": ""}
        )
        assert status == 401
        rest.close()
        otp = url.split("otp=", 1)[1]
        c = OptionsClient(url)
        assert c.request({"balance": 1})["balance"]["loginid"] == account_id
        c.request({"authorize": SECRET_PAT})  # a v3 call with the PAT, on the new API
        c.close()
        with pytest.raises(websocket.WebSocketBadStatusException):
            websocket.create_connection(url, timeout=5)  # the spent OTP: refused, logged
        v3 = Client(srv.url)
        v3.request({"authorize": SECRET_TOKEN})
        v3.close()
    texts = _texts(caplog.records)
    assert any("response sent (401 Unauthorized)" in t for t in texts)  # websockets logged it
    assert any("connection open" in t for t in texts)
    assert_no_secret(caplog.records, SECRET_PAT, otp, SECRET_TOKEN)


def test_quiet_logger_hides_debug_arguments_and_exception_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    log = QuietLogger("deriv_sdk.testing.websockets.test")
    assert not log.isEnabledFor(logging.DEBUG)  # websockets computes self.debug from this
    log.debug("< TEXT %r", f'{{"authorize": "{SECRET_TOKEN}"}}')
    log.info("connection rejected (%d %s)", 401, f"GET /ws/demo?otp={SECRET_TOKEN}")
    try:
        raise ValueError(f"bad request line: GET /?otp={SECRET_TOKEN}")
    except ValueError:
        log.error("opening handshake failed", exc_info=True)
    log.warning("%s", SECRET_TOKEN)
    mine = [r for r in caplog.records if r.name == "deriv_sdk.testing.websockets.test"]
    messages = [r.getMessage() for r in mine]
    assert messages == [
        "connection rejected (401 <hidden>)",
        "opening handshake failed (ValueError)",
        "<hidden>",
    ]
    assert all(r.exc_info is None for r in mine)
    assert_no_secret(mine, SECRET_TOKEN)


def test_quiet_logger_respects_the_real_level(caplog: Any) -> None:
    caplog.set_level(logging.WARNING)
    log = QuietLogger("deriv_sdk.testing.websockets.level")
    assert not log.isEnabledFor(logging.INFO)
    log.info("server listening on %s", "127.0.0.1:1")
    log.warning("skipped broadcast")
    assert [r.getMessage() for r in caplog.records if r.name.endswith(".level")] == [
        "skipped broadcast"
    ]
