"""Against Deriv's live server: deselected by default; run with ``python -m pytest -m network``."""

from __future__ import annotations

import threading

import pytest

from deriv_sdk import APIError, Connection

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def test_the_guides_ping_against_deriv() -> None:
    with Connection(app_id=1089, request_timeout=20) as conn:
        reply = conn.request({"ping": 1})
        assert reply["msg_type"] == "ping" and reply["ping"] == "pong"
        assert isinstance(conn.request({"time": 1})["time"], int)


def test_a_live_tick_stream_and_a_refusal() -> None:
    with Connection(app_id=1089, request_timeout=20) as conn:
        got = threading.Event()
        sub = conn.subscribe({"ticks": "R_100"}, lambda message: got.set())
        assert got.wait(20) and sub.id
        sub.forget()
        with pytest.raises(APIError):
            conn.subscribe({"ticks": "NO_SUCH_SYMBOL"}, lambda message: None)
