"""LocalServer's lifecycle: start/stop, threads, the pytest fixture, ``python -m``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import websocket

from deriv_sdk.testing import LocalServer

pytestmark = pytest.mark.timeout(30)


def _server_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("deriv_sdk-")]


def test_start_returns_self_and_url() -> None:
    srv = LocalServer()
    assert srv.start() is srv
    try:
        assert srv.port > 0
        assert srv.url == f"ws://127.0.0.1:{srv.port}/websockets/v3?app_id=1089&l=EN&brand=deriv"
        names = _server_threads()
        assert {"deriv_sdk-server-accept", "deriv_sdk-server-ticks"} <= set(names)
        assert all(t.daemon for t in threading.enumerate() if t.name.startswith("deriv_sdk-"))
    finally:
        srv.stop()
    srv.stop()  # idempotent
    assert _server_threads() == []
    with pytest.raises(RuntimeError):
        srv.start()


def test_stop_joins_every_thread_with_busy_and_silent_clients() -> None:
    srv = LocalServer(tokens=["t"], tick_interval=0.01).start()
    readers = []
    for symbol in ("R_10", "R_50"):
        ws = websocket.create_connection(srv.url, timeout=5)
        ws.send(json.dumps({"ticks": symbol, "subscribe": 1}))
        ws.recv()
        readers.append(ws)  # never read again: their queues fill up
    stalled = websocket.create_connection(srv.url, timeout=5)
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)  # never handshakes
    assert any(n.startswith("deriv_sdk-server-send-") for n in _server_threads())
    assert any(n.startswith("deriv_sdk-server-recv-") for n in _server_threads())
    assert any(n.startswith("deriv_sdk-server-conn-") for n in _server_threads())
    srv.stall()
    stalled.send(json.dumps({"ping": 1}))  # held by the stall
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 8
    assert _server_threads() == []
    for ws in [*readers, stalled]:
        ws.shutdown()
    raw.close()


def test_context_manager_and_many_sequential_servers() -> None:
    for _ in range(5):
        with LocalServer() as srv:
            ws = websocket.create_connection(srv.url, timeout=5)
            ws.send('{"ping": 1}')
            assert json.loads(ws.recv())["ping"] == "pong"
            ws.close()
    assert _server_threads() == []


def test_deriv_server_fixture(deriv_server: LocalServer) -> None:
    ws = websocket.create_connection(deriv_server.url, timeout=5)
    ws.send(json.dumps({"authorize": "test-token", "req_id": 1}))
    reply = json.loads(ws.recv())
    assert reply["authorize"]["balance"] == 10000
    ws.send(json.dumps({"ticks": "R_100", "subscribe": 1}))
    ticks = [json.loads(ws.recv()) for _ in range(3)]
    assert all(t["msg_type"] == "tick" for t in ticks)
    ws.close()
    assert deriv_server.tick_interval == 0.05


def test_plugin_module_does_not_import_websockets() -> None:
    code = (
        "import sys, deriv_sdk.testing.pytest_plugin as p; "
        "assert 'websockets' not in sys.modules and 'jsonschema' not in sys.modules; "
        "print(p.deriv_server.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_python_m_runs_in_the_foreground_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "deriv_sdk.testing", "--port", "0", "--token", "tok"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:") and "app_id=1089" in url
        ws = websocket.create_connection(url, timeout=5)
        ws.send('{"authorize": "tok"}')
        assert "authorize" in json.loads(ws.recv())
        ws.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        LocalServer(tokens={"t": {"nickname": "x"}})
    with pytest.raises(ValueError):
        LocalServer(tick_interval=0)
    with pytest.raises(ValueError):
        LocalServer(rate_limits={"ping": 0})
    LocalServer().stop()  # never started: nothing to do


@pytest.mark.deriv_server(tokens={"vip": {"balance": 5}}, rate_limits={"ping": 1})
def test_deriv_server_marker_overrides_arguments(deriv_server: LocalServer) -> None:
    assert deriv_server.rate_limits == {"ping": 1}
    ws = websocket.create_connection(deriv_server.url, timeout=5)
    ws.send(json.dumps({"authorize": "vip"}))
    assert json.loads(ws.recv())["authorize"]["balance"] == 5
    ws.close()


def test_deriv_server_fixture_accepts_the_test_pat(deriv_server: LocalServer) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", deriv_server.port, timeout=5)
    headers = {"Authorization": "Bearer test-pat", "Deriv-App-ID": "any-app"}
    conn.request("GET", "/trading/v1/options/accounts", headers=headers)
    response = conn.getresponse()
    assert response.status == 200
    (account,) = json.loads(response.read())["data"]
    assert account["account_type"] == "demo" and account["balance"] == 10000
    path = f"/trading/v1/options/accounts/{account['account_id']}/otp"
    conn.request("POST", path, headers=headers)
    url = json.loads(conn.getresponse().read())["data"]["url"]
    conn.close()
    ws = websocket.create_connection(url, timeout=5)
    ws.send(json.dumps({"balance": 1}))
    assert json.loads(ws.recv())["balance"]["loginid"] == account["account_id"]
    ws.close()
    ws = websocket.create_connection(deriv_server.options_url, timeout=5)
    ws.send(json.dumps({"time": 1}))
    assert json.loads(ws.recv())["msg_type"] == "time"
    ws.close()


@pytest.mark.deriv_server(pats={"mine": [{"account_id": "DOT12345678", "balance": 5}]})
def test_deriv_server_marker_overrides_pats(deriv_server: LocalServer) -> None:
    assert [a.account_id for a in deriv_server.pats["mine"]] == ["DOT12345678"]
    assert "test-pat" not in deriv_server.pats
