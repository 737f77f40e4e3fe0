"""The server command (``python -m deriv_sdk.testing``; ``deriv-sdk serve`` runs the same
``add_arguments``/``run``): options, output, signals, errors."""

from __future__ import annotations

import argparse
import json
import os
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
    assert (args.host, args.port, args.tokens, args.tick_interval, args.seed) == (
        "127.0.0.1",
        8765,
        None,
        1.0,
        None,
    )
    assert args.json is False and args.verbose == 0
    kwargs = command._server_kwargs(args)
    assert kwargs["tokens"] == ["test-token"]
    repeated = parse("--token", "a", "--token", "b", "-vv", "--json")
    assert repeated.tokens == ["a", "b"] and repeated.verbose == 2 and repeated.json


def test_without_output_options_a_cli_can_define_its_own() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    command.add_arguments(parser, output_options=False)  # no "conflicting option" error
    args = parser.parse_args(["--json", "--port", "0"])
    assert args.json and args.port == 0


def _serve_in_thread(*argv: str) -> tuple[threading.Thread, threading.Event, list[Any], list[str]]:
    lines: list[str] = []
    result: list[Any] = []
    stop = threading.Event()
    ready = threading.Event()

    def echo(line: str) -> None:
        lines.append(line)
        ready.set()

    def body() -> None:
        try:
            result.append(command.run(parse(*argv), echo=echo, stop=stop))
        except BaseException as exc:  # reported by the test
            result.append(exc)
        ready.set()

    thread = threading.Thread(target=body, name="test-serve")
    thread.start()
    assert ready.wait(10)
    return thread, stop, result, lines


def test_run_off_the_main_thread_installs_no_signal_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    thread, stop, result, lines = _serve_in_thread("--port", "0", "--token", "tok")
    try:
        assert result == [], result  # running, no "signal only works in main thread"
        url = lines[0]
        ws = websocket.create_connection(url, timeout=5)
        ws.send(json.dumps({"authorize": "tok"}))
        assert json.loads(ws.recv())["authorize"]["balance"] == 10000
        ws.close()
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        stop.set()
        thread.join(10)
    assert result == [0]


def test_json_output_is_one_object_without_secrets() -> None:
    thread, stop, result, lines = _serve_in_thread(
        "--port", "0", "--json", "--token", "very-secret-token"
    )
    stop.set()
    thread.join(10)
    assert result == [0]
    assert len(lines) == 1
    urls = json.loads(lines[0])
    assert set(urls) >= {"url"}
    assert urls["url"].startswith("ws://127.0.0.1:")
    assert "very-secret-token" not in lines[0]


def test_bad_values_exit_2_and_a_taken_port_exits_3(capsys: Any) -> None:
    assert command.run(parse("--tick-interval", "0")) == 2
    assert capsys.readouterr().err == "error: --tick-interval must be > 0\n"
    assert command.run(parse("--port", "70000")) == 2
    assert "--port" in capsys.readouterr().err
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
        [sys.executable, "-m", "deriv_sdk.testing", "--port", "0", "--token", "s3cr3t"],
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
        assert "s3cr3t" not in url + out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
