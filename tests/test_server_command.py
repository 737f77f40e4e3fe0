"""The server command (``python -m deriv_sdk.testing``; ``deriv-sdk serve`` runs the same
``add_arguments``/``run``): options, output, signals, errors."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

import pytest
import websocket

from deriv_sdk.testing import command

pytestmark = pytest.mark.timeout(30)


def parse(*argv: str, output_options: bool = True) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser, output_options=output_options)
    return parser.parse_args(list(argv))


def test_defaults() -> None:
    args = parse()
    assert args.json is False and args.verbose == 0
    assert command._server_kwargs(args) == {
        "host": "127.0.0.1",
        "port": 8765,
        "tokens": ["test-token"],
        "pats": ["test-pat"],
        "tick_interval": 1.0,
        "seed": None,
        "otp_ttl": 120.0,
    }
    repeated = parse(
        "--token", "a", "--token", "b", "--pat", "p1", "--pat", "p2", "--otp-ttl", "5", "-vv"
    )
    kwargs = command._server_kwargs(repeated)
    assert kwargs["tokens"] == ["a", "b"] and kwargs["pats"] == ["p1", "p2"]
    assert kwargs["otp_ttl"] == 5.0 and repeated.verbose == 2


def test_without_output_options_a_cli_can_define_its_own() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    command.add_arguments(parser, output_options=False)  # no "conflicting option" error
    args = parser.parse_args(["--json", "--port", "0"])
    assert args.json and args.port == 0


def test_importing_the_command_needs_no_testing_extra() -> None:
    code = (
        "import sys, argparse, deriv_sdk.testing.command as c; "
        "c.add_arguments(argparse.ArgumentParser()); "
        "assert 'websockets' not in sys.modules and 'jsonschema' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr


def test_without_the_testing_extra_run_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setitem(sys.modules, "deriv_sdk.testing.server", None)  # import fails
    assert command.run(parse("--port", "0")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the server needs the testing extra") and err.count("\n") == 1


def _serve_in_thread(
    *argv: str, lines: int
) -> tuple[threading.Thread, threading.Event, list[Any], list[str]]:
    """Run the command in a thread; return once it printed ``lines`` lines (or ended)."""
    out: queue.Queue[str | None] = queue.Queue()
    result: list[Any] = []
    stop = threading.Event()

    def body() -> None:
        try:
            result.append(command.run(parse(*argv), echo=out.put, stop=stop))
        except BaseException as exc:  # reported by the test
            result.append(exc)
        out.put(None)

    thread = threading.Thread(target=body, name="test-serve")
    thread.start()
    printed: list[str] = []
    while len(printed) < lines:
        line = out.get(timeout=10)
        if line is None:
            break
        printed.append(line)
    return thread, stop, result, printed


def test_run_off_the_main_thread_installs_no_signal_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    thread, stop, result, lines = _serve_in_thread(
        "--port", "0", "--token", "tok", "--pat", "my-pat", lines=3
    )
    try:
        assert result == [], result  # running, no "signal only works in main thread"
        url, options_url, rest_url = lines
        port = int(rest_url.rsplit(":", 1)[1])
        assert rest_url == f"http://127.0.0.1:{port}"
        assert options_url == f"ws://127.0.0.1:{port}/trading/v1/options/ws/public"
        ws = websocket.create_connection(url, timeout=5)
        ws.send(json.dumps({"authorize": "tok"}))
        assert json.loads(ws.recv())["authorize"]["balance"] == 10000
        ws.close()
        ws = websocket.create_connection(options_url, timeout=5)
        ws.send(json.dumps({"time": 1}))
        assert json.loads(ws.recv())["msg_type"] == "time"
        ws.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        headers = {"Authorization": "Bearer my-pat", "Deriv-App-ID": "x"}
        conn.request("GET", "/trading/v1/options/accounts", headers=headers)
        reply = conn.getresponse()
        assert reply.status == 200 and len(json.loads(reply.read())["data"]) == 1
        conn.close()
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        stop.set()
        thread.join(10)
    assert result == [0]


def test_json_output_is_one_object_without_secrets() -> None:
    thread, stop, result, lines = _serve_in_thread(
        "--port", "0", "--json", "--token", "very-secret-token", "--pat", "very-secret-pat", lines=1
    )
    stop.set()
    thread.join(10)
    assert result == [0]
    assert len(lines) == 1
    urls = json.loads(lines[0])
    assert list(urls) == ["url", "options_url", "rest_url"]
    assert urls["url"].startswith("ws://127.0.0.1:")
    assert urls["options_url"].endswith("/trading/v1/options/ws/public")
    assert urls["rest_url"].startswith("http://127.0.0.1:")
    assert "very-secret" not in lines[0]


def test_bad_values_exit_2_and_a_taken_port_exits_3(capsys: Any) -> None:
    assert command.run(parse("--tick-interval", "0")) == 2
    assert capsys.readouterr().err == "error: --tick-interval must be > 0\n"
    assert command.run(parse("--port", "70000")) == 2
    assert "--port" in capsys.readouterr().err
    assert command.run(parse("--otp-ttl", "0")) == 2
    assert capsys.readouterr().err == "error: --otp-ttl must be > 0\n"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert command.run(parse("--port", str(port))) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}: ") and err.count("\n") == 1


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM to a child process")
def test_python_m_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deriv_sdk.testing",
            "--port",
            "0",
            "--token",
            "s3cr3t",
            "--pat",
            "pat-s3cr3t",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:")
        ws = websocket.create_connection(url, timeout=5)
        ws.send('{"ping": 1}')
        assert json.loads(ws.recv())["ping"] == "pong"
        ws.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        out, err = proc.stdout.read(), proc.stderr.read()
        assert "Traceback" not in err
        assert out.count("\n") == 2  # the options URL and the REST URL after the v3 one
        assert "s3cr3t" not in url + out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
