"""The ``deriv-sdk`` command line: ``main(argv)`` in-process against LocalServer, and real runs."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from deriv_sdk.cli import main
from deriv_sdk.testing import LocalServer

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(autouse=True)
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DERIV_TOKEN", raising=False)


# --------------------------------------------------------------------------- subcommands


def test_ping_prints_the_round_trip_time(deriv_server: LocalServer, capsys: Any) -> None:
    code, out, err = run(capsys, "--url", deriv_server.url, "ping")
    assert code == 0 and err == []
    assert len(out) == 1 and re.fullmatch(r"pong: \d+\.\d ms", out[0])


def test_time_human_and_json(deriv_server: LocalServer, capsys: Any) -> None:
    before = int(time.time())
    code, out, _ = run(capsys, "--url", deriv_server.url, "time")
    assert code == 0
    epoch = int(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(epoch (\d+)\)", out[0])[1])
    assert abs(epoch - before) <= 5
    code, out, _ = run(capsys, "--url", deriv_server.url, "--json", "time")
    assert code == 0 and len(out) == 1
    data = json.loads(out[0])
    assert abs(data["time"] - before) <= 5 and data["utc"].endswith("UTC")


def test_options_before_or_after_the_subcommand(deriv_server: LocalServer, capsys: Any) -> None:
    for argv in (
        ["--url", deriv_server.url, "--json", "--timeout", "5", "ping"],
        ["ping", "--url", deriv_server.url, "--json", "--timeout", "5"],
        ["--url", deriv_server.url, "ping", "--json"],
    ):
        code, out, _ = run(capsys, *argv)
        assert code == 0, argv
        assert json.loads(out[0])["ping"] == "pong", argv


def test_ticks_count_3_prints_3_lines(deriv_server: LocalServer, capsys: Any) -> None:
    code, out, err = run(capsys, "--url", deriv_server.url, "ticks", "R_100", "--count", "3")
    assert code == 0 and err == []
    assert len(out) == 3
    for line in out:
        assert re.fullmatch(r"\d+ R_100 \d+\.\d\d", line), line


def test_ticks_json(deriv_server: LocalServer, capsys: Any) -> None:
    code, out, _ = run(capsys, "ticks", "R_50", "--count", "2", "--json", "--url", deriv_server.url)
    assert code == 0
    ticks = [json.loads(line) for line in out]
    assert [t["symbol"] for t in ticks] == ["R_50", "R_50"]
    assert all(isinstance(t["quote"], float) for t in ticks)


def test_ticks_unknown_symbol_is_an_api_error(deriv_server: LocalServer, capsys: Any) -> None:
    code, out, err = run(capsys, "--url", deriv_server.url, "ticks", "NOPE", "--count", "1")
    assert code == 1 and out == []
    assert err == ["error: InvalidSymbol: Symbol NOPE invalid."]


def test_call_prints_the_response_as_json(deriv_server: LocalServer, capsys: Any) -> None:
    code, out, _ = run(capsys, "--url", deriv_server.url, "call", '{"time": 1}')
    assert code == 0 and len(out) == 1
    response = json.loads(out[0])
    assert response["msg_type"] == "time" and response["echo_req"]["time"] == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["call", '{"ticks": "R_100"}', "--subscribe", "--count", "3"],
        ["call", '{"ticks": "R_100", "subscribe": 1}', "--count", "3"],
    ],
    ids=["--subscribe", "subscribe-in-payload"],
)
def test_call_subscribe_count(deriv_server: LocalServer, capsys: Any, argv: list[str]) -> None:
    code, out, _ = run(capsys, "--url", deriv_server.url, *argv)
    assert code == 0
    messages = [json.loads(line) for line in out]
    assert len(messages) == 3  # the first reply counts
    assert {m["msg_type"] for m in messages} == {"tick"}
    assert len({m["subscription"]["id"] for m in messages}) == 1


def test_call_stream_ends_when_the_server_ends_it(
    deriv_server: LocalServer, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A contract's proposal_open_contract stream ends at settlement: so does the command."""
    from deriv_sdk import Connection

    with Connection(url=deriv_server.url, keepalive_interval=None, reconnect=False) as conn:
        conn.authorize("test-token")
        proposal = conn.request(
            {
                "proposal": 1,
                "amount": 10,
                "basis": "stake",
                "contract_type": "CALL",
                "currency": "USD",
                "duration": 2,
                "duration_unit": "t",
                "symbol": "R_100",
            }
        )["proposal"]
        contract = conn.request({"buy": proposal["id"], "price": proposal["ask_price"]})["buy"]
    monkeypatch.setenv("DERIV_TOKEN", "test-token")
    payload = json.dumps({"proposal_open_contract": 1, "contract_id": contract["contract_id"]})
    code, out, _ = run(capsys, "--url", deriv_server.url, "call", payload, "--subscribe")
    assert code == 0
    last = json.loads(out[-1])
    assert last["proposal_open_contract"]["is_sold"] == 1 and "subscription" not in last


def test_deriv_token_authorizes_first(
    deriv_server: LocalServer, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERIV_TOKEN", "test-token")
    code, out, err = run(capsys, "--url", deriv_server.url, "call", '{"balance": 1}')
    assert code == 0 and err == []
    balance = json.loads(out[0])["balance"]
    assert balance["balance"] == 10000 and balance["currency"] == "USD"
    calls = [next(iter(r)) for r in deriv_server.requests]
    assert calls == ["authorize", "balance"]


def test_local_uses_deriv_token(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DERIV_TOKEN", "my-own-token")
    code, out, _ = run(capsys, "--local", "call", '{"balance": 1}')
    assert code == 0 and json.loads(out[0])["balance"]["balance"] == 10000


# --------------------------------------------------------------------------- exit codes


def test_exit_1_api_error_one_line(deriv_server: LocalServer, capsys: Any) -> None:
    code, out, err = run(capsys, "--url", deriv_server.url, "call", '{"balance": 1}')
    assert code == 1 and out == []
    assert err == ["error: AuthorizationRequired: Please log in."]


def test_exit_1_bad_token_is_not_shown(
    deriv_server: LocalServer, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERIV_TOKEN", "wrong-secret-token")
    code, out, err = run(capsys, "--url", deriv_server.url, "ping")
    assert code == 1 and out == [] and len(err) == 1
    assert err[0].startswith("error: InvalidToken: ")
    assert "wrong-secret-token" not in err[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["call", "{bad"], "not valid JSON"),
        (["call", "[1, 2]"], "must be a JSON object"),
        (["--local", "--url", "ws://127.0.0.1:1/", "ping"], "cannot be used together"),
        (["--url", "http://example.com/", "ping"], "url must start with ws:// or wss://"),
    ],
)
def test_exit_2_one_line_message(capsys: Any, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == []
    assert len(err) == 1 and err[0].startswith("deriv-sdk: error: ") and message in err[0]


@pytest.mark.parametrize(
    "argv",
    [["bogus"], [], ["ticks"], ["ticks", "R_100", "--count", "0"], ["ping", "--timeout", "x"]],
)
def test_exit_2_argparse_usage(capsys: Any, argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == []
    assert err[0].startswith("usage: deriv-sdk") and err[-1].startswith("deriv-sdk")


def test_help_exits_0(capsys: Any) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and any("ticks" in line for line in out)


def test_exit_3_unreachable_url_within_the_timeout(capsys: Any) -> None:
    start = time.monotonic()
    url = f"ws://127.0.0.1:{free_port()}/websockets/v3?app_id=1089"
    code, out, err = run(capsys, "--url", url, "--timeout", "2", "ping")
    assert time.monotonic() - start < 4
    assert code == 3 and out == []
    assert len(err) == 1 and err[0].startswith("error: ConnectError: ")


def test_exit_3_no_answer_in_time(deriv_server: LocalServer, capsys: Any) -> None:
    deriv_server.stall()
    code, out, err = run(capsys, "--url", deriv_server.url, "--timeout", "0.5", "time")
    deriv_server.resume()
    assert code == 3 and out == []
    assert len(err) == 1 and err[0].startswith("error: RequestTimeoutError: ")


# --------------------------------------------------------------------------- real processes


def _command() -> list[str]:
    script = Path(sys.executable).parent / "deriv-sdk"
    if script.exists() or shutil.which("deriv-sdk"):
        return [str(script) if script.exists() else "deriv-sdk"]
    return [sys.executable, "-m", "deriv_sdk"]


def _lines(stream: IO[str]) -> queue.Queue[str]:
    """Reads ``stream`` on a thread, so that the test can wait for a line with a timeout."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put("<eof>")

    threading.Thread(target=read, daemon=True).start()
    return lines


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DERIV_TOKEN", None)
    return env


def test_subprocess_python_m_local_ping() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deriv_sdk", "--local", "ping"],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=ROOT,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"pong: \d+\.\d ms\n", proc.stdout) and proc.stderr == ""


def test_subprocess_console_script_exit_codes(deriv_server: LocalServer) -> None:
    proc = subprocess.run(
        [*_command(), "--url", deriv_server.url, "call", '{"balance": 1}'],
        capture_output=True,
        text=True,
        timeout=20,
        env=_env(),
    )
    assert proc.returncode == 1 and proc.stderr == "error: AuthorizationRequired: Please log in.\n"


def test_subprocess_ticks_ctrl_c_exits_0(deriv_server: LocalServer) -> None:
    proc = subprocess.Popen(
        [*_command(), "--url", deriv_server.url, "ticks", "R_100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        lines = _lines(proc.stdout)  # type: ignore[arg-type]
        first = lines.get(timeout=15)
        assert re.fullmatch(r"\d+ R_100 \d+\.\d\d", first), first
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(5)


def test_subprocess_serve_then_ctrl_c(capsys: Any) -> None:
    proc = subprocess.Popen(
        [*_command(), "serve", "--port", "0", "--tick-interval", "0.05", "--token", "tok-1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        url = _lines(proc.stdout).get(timeout=15)  # type: ignore[arg-type]
        assert url.startswith("ws://127.0.0.1:") and "app_id=1089" in url
        code, out, _ = run(capsys, "--url", url, "ticks", "R_10", "--count", "2")
        assert code == 0 and len(out) == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
        proc.wait(5)
