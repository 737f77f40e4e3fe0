"""The ``deriv-sdk`` command line: ``main(argv)`` in-process against LocalServer, and real runs."""

from __future__ import annotations

import json
import logging
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
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from deriv_sdk import Connection, RestClient, cli
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
        lines = _lines(proc.stdout)  # type: ignore[arg-type]
        url, options_url, rest_url = (lines.get(timeout=15) for _ in range(3))
        assert url.startswith("ws://127.0.0.1:") and "app_id=1089" in url
        port = url.split(":")[2].split("/")[0]
        assert options_url == f"ws://127.0.0.1:{port}/trading/v1/options/ws/public"
        assert rest_url == f"http://127.0.0.1:{port}"
        code, out, _ = run(capsys, "--url", url, "ticks", "R_10", "--count", "2")
        assert code == 0 and len(out) == 2
        code, out, _ = run(capsys, "--api", "options", "--url", options_url, "time")
        assert code == 0 and len(out) == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
        proc.wait(5)


# --------------------------------------------------------------------------- the new API

ACCOUNT_LINE = r"DOT\d{8} demo 10000\.0 USD active row"


@pytest.fixture
def local_account(capsys: Any) -> str:
    """The demo account id of the PAT test-pat (the same in every process)."""
    code, out, _ = run(capsys, "--api", "options", "--local", "accounts")
    assert code == 0 and len(out) == 1
    return out[0].split()[0]


def test_options_local_time(capsys: Any) -> None:
    """Acceptance: ``deriv-sdk --api options --local time``."""
    before = int(time.time())
    code, out, err = run(capsys, "--api", "options", "--local", "time")
    assert code == 0 and err == []
    epoch = int(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(epoch (\d+)\)", out[0])[1])
    assert abs(epoch - before) <= 5


def test_options_local_accounts(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Acceptance: ``DERIV_TOKEN=test-pat deriv-sdk --api options --local accounts``."""
    monkeypatch.setenv("DERIV_TOKEN", "test-pat")
    code, out, err = run(capsys, "--api", "options", "--local", "accounts")
    assert code == 0 and err == []
    assert len(out) == 1 and re.fullmatch(ACCOUNT_LINE, out[0]), out
    code, out, _ = run(capsys, "accounts", "--json", "--api", "options", "--local")
    assert code == 0 and len(out) == 1
    account = json.loads(out[0])
    assert account["account_type"] == "demo" and account["balance"] == 10000


def test_rest_url_reaches_the_rest_of_a_server_of_yours(
    deriv_server: LocalServer, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--rest-url``: the REST base URL that ``deriv-sdk serve`` prints (plain http)."""
    monkeypatch.setenv("DERIV_TOKEN", "test-pat")
    base = ["--api", "options", "--app-id", "my-app", "--rest-url", deriv_server.rest_url]
    code, out, err = run(capsys, *base, "accounts")
    assert code == 0 and err == [] and re.fullmatch(ACCOUNT_LINE, out[0]), (out, err)
    account = out[0].split()[0]
    code, out, err = run(capsys, *base, "--account", account, "call", '{"balance": 1}')
    assert code == 0 and json.loads(out[0])["balance"]["loginid"] == account, err
    assert [h["otp"] is not None for h in deriv_server.handshakes] == [True]


def test_options_local_pat_from_deriv_token(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --local the server accepts DERIV_TOKEN as the PAT: its own demo account."""
    code, out, _ = run(capsys, "--api", "options", "--local", "accounts")
    default = out[0].split()[0]
    monkeypatch.setenv("DERIV_TOKEN", "my-own-pat")
    code, out, _ = run(capsys, "--api", "options", "--local", "accounts")
    assert code == 0 and re.fullmatch(ACCOUNT_LINE, out[0]) and out[0].split()[0] != default


def test_options_local_account_call_balance(
    capsys: Any, monkeypatch: pytest.MonkeyPatch, local_account: str
) -> None:
    """Acceptance: ``... --api options --local --account ID call '{"balance": 1}'``."""
    monkeypatch.setenv("DERIV_TOKEN", "test-pat")
    argv = ["--api", "options", "--local", "--account", local_account]
    code, out, err = run(capsys, *argv, "call", '{"balance": 1}')
    assert code == 0 and err == []
    balance = json.loads(out[0])["balance"]
    assert balance == {"balance": 10000, "currency": "USD", "loginid": local_account}


def test_options_account_stream(capsys: Any, local_account: str) -> None:
    argv = ["--api", "options", "--local", "--account", local_account, "--json"]
    code, out, _ = run(capsys, *argv, "ticks", "R_100", "--count", "2")
    assert code == 0 and [json.loads(line)["symbol"] for line in out] == ["R_100", "R_100"]


def test_options_public_socket_by_url(deriv_server: LocalServer, capsys: Any) -> None:
    url = deriv_server.options_url
    code, out, _ = run(capsys, "--api", "options", "--url", url, "ping")
    assert code == 0 and re.fullmatch(r"pong: \d+\.\d ms", out[0])
    code, out, _ = run(capsys, "--api", "options", "--url", url, "ticks", "R_50", "--count", "2")
    assert code == 0 and len(out) == 2 and all(" R_50 " in line for line in out)
    code, out, _ = run(capsys, "--api", "options", "--url", url, "call", '{"balance": 1}')
    assert code == 1 and out == []
    assert [h["path"] for h in deriv_server.handshakes] == ["/trading/v1/options/ws/public"] * 3
    assert not any("authorize" in r for r in deriv_server.requests)


def test_options_sends_no_authorize_even_with_a_token(
    deriv_server: LocalServer, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERIV_TOKEN", "test-pat")
    code, _, _ = run(capsys, "--api", "options", "--url", deriv_server.options_url, "time")
    assert code == 0 and [next(iter(r)) for r in deriv_server.requests] == ["time"]


@pytest.mark.parametrize("account", ["DOT00000000", "nope"])
def test_exit_1_an_account_that_rest_refuses(capsys: Any, account: str) -> None:
    """Not the PAT's account: the OTP call gets Deriv's 400, the RestError is the cause of
    the ConnectError that ended the connection: exit 1."""
    code, out, err = run(
        capsys, "--api", "options", "--local", "--account", account, "call", '{"balance": 1}'
    )
    assert code == 1 and out == []
    message = f"error: cannot get a one-time URL for account {account}: HTTP 400 ValidationError"
    assert len(err) == 1 and err[0].startswith(message), err


def test_exit_3_options_server_unreachable(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DERIV_TOKEN", "some-pat")
    endpoint = f"127.0.0.1:{free_port()}"
    base = ["--api", "options", "--app-id", "my-app", "--timeout", "2"]
    for argv in (
        [*base, "--endpoint", endpoint, "accounts"],
        [*base, "--endpoint", endpoint, "--account", "DOT12345678", "time"],
        [*base, "--url", f"ws://{endpoint}/trading/v1/options/ws/public", "time"],
        [*base, "--rest-url", f"http://{endpoint}", "accounts"],
    ):
        code, out, err = run(capsys, *argv)
        assert code == 3 and out == [], argv
        assert len(err) == 1 and err[0].startswith("error: ConnectError: "), (argv, err)
        assert endpoint in err[0], err  # the port too
        assert "some-pat" not in err[0]


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["accounts"], {}, "add --api options"),
        (["--account", "DOT1", "time"], {}, "add --api options"),
        (["--api", "options", "accounts"], {"DERIV_APP_ID": "a"}, "set DERIV_TOKEN"),
        (["--api", "options", "accounts"], {"DERIV_TOKEN": "p"}, "--app-id ID or DERIV_APP_ID"),
        (["--api", "options", "--account", "X", "time"], {"DERIV_TOKEN": "p"}, "DERIV_APP_ID"),
        (
            ["--api", "options", "--url", "ws://127.0.0.1:1/", "--account", "X", "time"],
            {"DERIV_TOKEN": "p", "DERIV_APP_ID": "a"},
            "use --rest-url or --endpoint",
        ),
        (["--rest-url", "http://127.0.0.1:1", "accounts"], {}, "for accounts or --account"),
        (["--api", "options", "--rest-url", "http://h", "time"], {}, "for accounts or --account"),
        (
            ["--api", "options", "--rest-url", "http://h", "--endpoint", "h", "accounts"],
            {},
            "not --endpoint",
        ),
        (["--api", "options", "--local", "--rest-url", "http://h", "time"], {}, "cannot be used"),
        (
            ["--api", "options", "--rest-url", "ws://127.0.0.1:1", "accounts"],
            {"DERIV_TOKEN": "p", "DERIV_APP_ID": "a"},
            "http:// or https://",
        ),
        (["--api", "options", "--local", "--endpoint", "h", "time"], {}, "cannot be used"),
        (["--api", "options", "--local", "--account", "X", "accounts"], {}, "drop --account"),
        (["--url", "ws://127.0.0.1:1/", "serve"], {}, "not --url"),
        (["--api", "options", "serve", "--port", "0"], {}, "not --api"),
        (["--api", "options", "--url", "http://x/", "time"], {}, "ws:// or wss://"),
    ],
)
def test_exit_2_new_api_usage(
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.delenv("DERIV_APP_ID", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == []
    assert len(err) == 1 and err[0].startswith("deriv-sdk: error: ") and message in err[0], err


def test_exit_2_bad_api_choice(capsys: Any) -> None:
    code, out, err = run(capsys, "--api", "v4", "time")
    assert code == 2 and out == [] and "invalid choice" in err[-1]


# --------------------------------------------------------------------------- serve


def _help_options(text: str) -> set[str]:
    return set(re.findall(r"^\s{2}(-[\w-]+)(?:, (--[\w-]+))?", text, re.M)) - {("-h", "--help")}


def _serve_namespace(argv: list[str]) -> dict[str, Any]:
    args = vars(cli.build_parser().parse_args(["serve", *argv]))
    del args["command"]
    # The CLI's --json/-v default to "not given" (so that one before the subcommand counts);
    # the server command reads them with these defaults.
    return {"json": False, "verbose": 0, **args}


def test_serve_has_the_options_and_defaults_of_python_m_deriv_sdk_testing(capsys: Any) -> None:
    import argparse

    from deriv_sdk.testing import __main__ as testing_main
    from deriv_sdk.testing import command

    with pytest.raises(SystemExit):
        testing_main.main(["--help"])
    theirs = _help_options(capsys.readouterr().out)
    assert cli.main(["serve", "--help"]) == 0
    ours = _help_options(capsys.readouterr().out)
    assert ours == theirs and ("--port", "") in ours and ("-v", "--verbose") in ours

    reference = argparse.ArgumentParser()
    command.add_arguments(reference)  # what python -m deriv_sdk.testing builds
    for argv in (
        [],
        ["--port", "0", "--host", "0.0.0.0", "--token", "a", "--token", "b", "--pat", "p"],
        ["--tick-interval", "0.5", "--seed", "7", "--otp-ttl", "30", "--json", "-vv"],
    ):
        assert _serve_namespace(argv) == vars(reference.parse_args(argv)), argv
    args = cli.build_parser().parse_args(["-v", "--json", "serve"])
    assert args.verbose == 1 and args.json is True  # given before the subcommand


def _serve(*argv: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen(
        [*_command(), "serve", "--port", "0", "--tick-interval", "0.05", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    return proc, _lines(proc.stdout)  # type: ignore[arg-type]


def test_serve_json_and_its_log_show_no_token_pat_or_otp() -> None:
    """Regression (core issue): ``deriv-sdk serve --json`` printed the tokens."""
    token, pat = "SeCrEt-ToKeN-0123456789", "pat_SeCrEt-PaT-0123456789abcdef"
    proc, lines = _serve("--json", "-vv", "--token", token, "--pat", pat)
    try:
        urls = json.loads(lines.get(timeout=15))
        assert sorted(urls) == ["options_url", "rest_url", "url"]
        with Connection(url=urls["url"], keepalive_interval=None, reconnect=False) as conn:
            assert conn.authorize(token)["authorize"]["balance"] == 10000
        rest = RestClient("my-app", pat, base_url=urls["rest_url"])
        account = rest.accounts()[0]["account_id"]
        otp_url = rest.otp_url(account)
        otp = otp_url.split("otp=", 1)[1]
        with Connection(url=otp_url, keepalive_interval=None, reconnect=False) as conn:
            assert conn.request({"balance": 1})["balance"]["loginid"] == account
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert proc.stderr is not None
        out = _rest_of(lines)
        err = proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(5)
    everything = "\n".join(out) + err
    assert out == ["<eof>"]  # the one JSON line, nothing else on stdout
    assert "deriv_sdk.testing" in err and "connection open" in err  # -vv did log
    for secret in (token, pat, otp):
        assert secret not in everything


def _rest_of(lines: queue.Queue[str]) -> list[str]:
    """The lines of an ended process not read yet, up to the reader's ``<eof>``."""
    got = [lines.get(timeout=10)]
    while got[-1] != "<eof>":
        got.append(lines.get(timeout=10))
    return got


# --------------------------------------------------------------------------- -v and secrets


def test_local_v_never_prints_the_token(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (core issue): ``deriv-sdk --local -v`` printed the ``authorize`` token
    (the in-process server's websockets DEBUG log)."""
    monkeypatch.setenv("DERIV_TOKEN", "test-token")
    root = logging.getLogger()
    handlers, level = list(root.handlers), logging.getLogger("deriv_sdk").level
    code, out, err = run(capsys, "--local", "-v", "call", '{"balance": 1}')
    assert code == 0 and json.loads(out[0])["balance"]["balance"] == 10000
    text = "\n".join(out + err)
    assert "deriv_sdk.connection: connected to ws://127.0.0.1:" in text  # -v did log
    assert "deriv_sdk.testing.websockets: connection open" in text  # the server's too
    assert "-> authorize" in text
    assert "test-token" not in text and "< TEXT" not in text
    assert "<redacted>" not in text  # nothing had to be scrubbed: the SDK logged no secret
    assert root.handlers == handlers and logging.getLogger("deriv_sdk").level == level


OTP_SHOWN = re.compile(r"otp=(?!<redacted>)")


def test_options_local_v_account_never_prints_the_pat_or_an_otp(
    capsys: Any, monkeypatch: pytest.MonkeyPatch, local_account: str
) -> None:
    monkeypatch.setenv("DERIV_TOKEN", "test-pat")
    argv = ["--api", "options", "--local", "-v", "--account", local_account]
    code, out, err = run(capsys, *argv, "call", '{"balance": 1}')
    assert code == 0 and json.loads(out[0])["balance"]["loginid"] == local_account
    text = "\n".join(out + err)
    assert f"REST POST /trading/v1/options/accounts/{local_account}/otp -> 200" in text
    assert "/trading/v1/options/ws/demo?otp=<redacted>" in text
    assert "test-pat" not in text and not OTP_SHOWN.search(text)


def test_v_handler_passes_only_the_sdk_and_scrubs_secrets(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever another library or a future bug logs, the command's own handler shows no
    DERIV_TOKEN and no one-time password."""
    monkeypatch.setenv("DERIV_TOKEN", "pat_abcdef123456")
    args = cli.build_parser().parse_args(["-v", "time"])
    with cli._logging(args):
        logging.getLogger("websockets.server").debug('< TEXT \'{"x": "pat_abcdef123456"}\'')
        logging.getLogger("websocket").warning("GET /ws/demo?otp=Abc-123_xyz")
        logging.getLogger("deriv_sdk.test").debug(
            "bearer pat_abcdef123456 url ws://h/x?otp=Ab-c_1&l=EN"
        )
    logging.getLogger("deriv_sdk.test").warning("after the run: not the CLI's handler")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "MainThread deriv_sdk.test: bearer <redacted> url ws://h/x?otp=<redacted>&l=EN"
    assert len(err) == 1 or "after the run" in err[1]  # (logging's last resort, not ours)


# --------------------------------------------------------------------------- against Deriv-like TLS

PAT = "pat_TlS-0123456789abcdefghijklmnop"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LocalServer, dict[str, str]]]:
    """A LocalServer on https/wss (a CA the subprocess trusts through SSL_CERT_FILE), so the
    command reaches it as it reaches Deriv: ``--endpoint HOST:PORT``, REST and sockets."""
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    accounts = [
        {"account_id": "DOT10000001", "account_type": "demo", "balance": 9000.5},
        {"account_id": "CR10000002", "account_type": "real", "balance": 12.0},
    ]
    server = LocalServer(ssl_context=context, pats={PAT: accounts}, tick_interval=0.05)
    with server:
        env = {**_env(), "SSL_CERT_FILE": str(ca_file), "DERIV_TOKEN": PAT}
        env.pop("DERIV_APP_ID", None)
        yield server, env


def cli_run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_command(), *argv], capture_output=True, text=True, timeout=30, env=env)


def test_tls_endpoint_accounts_time_and_an_account_call(
    tls_server: tuple[LocalServer, dict[str, str]],
) -> None:
    server, env = tls_server
    base = ["--api", "options", "--endpoint", f"127.0.0.1:{server.port}", "--app-id", "my-app"]
    proc = cli_run(env, *base, "accounts")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "DOT10000001 demo 9000.5 USD active row",
        "CR10000002 real 12.0 USD active row",
    ]
    proc = cli_run(env, *base, "--json", "time")
    assert proc.returncode == 0 and "time" in json.loads(proc.stdout)
    account = ["-v", "--account", "CR10000002", "call", '{"balance": 1}']
    proc = cli_run({**env, "DERIV_APP_ID": "my-app"}, *base[:4], *account)  # app id from env
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["balance"]["balance"] == 12.0
    assert [h["path"] for h in server.handshakes] == [
        "/trading/v1/options/ws/public",
        "/trading/v1/options/ws/real",
    ]
    otps = [h["otp"] for h in server.handshakes if h["otp"]]
    assert len(otps) == 1
    text = proc.stdout + proc.stderr
    assert "deriv_sdk.rest: REST POST" in text  # -v logged the REST call...
    for secret in (PAT, *otps):  # ...but not the PAT nor the one-time password
        assert secret not in text
    assert not OTP_SHOWN.search(text)


def test_tls_bad_pat_exits_1_one_line_no_token(
    tls_server: tuple[LocalServer, dict[str, str]],
) -> None:
    server, env = tls_server
    env = {**env, "DERIV_TOKEN": "pat_WrOnG-SeCrEt-0123456789", "DERIV_APP_ID": "my-app"}
    base = ["--api", "options", "--endpoint", f"127.0.0.1:{server.port}"]
    for argv in (["accounts"], ["--account", "DOT10000001", "call", '{"balance": 1}']):
        proc = cli_run(env, *base, "-v", *argv)
        assert proc.returncode == 1 and proc.stdout == "", argv
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "HTTP 401 Unauthorized: Invalid or expired token" in errors[0]
        assert "pat_WrOnG-SeCrEt-0123456789" not in proc.stderr
        proc = cli_run(env, *base, *argv)  # without -v: that one line and nothing else
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr


def test_tls_stream_ends_with_exit_1_when_rest_refuses_the_reconnect(
    tls_server: tuple[LocalServer, dict[str, str]],
) -> None:
    """The PAT is revoked while the link is down: the reconnect's OTP call gets a 401, which
    ends the connection (a RestError as the cause of the ConnectError): exit 1, not 3."""
    server, env = tls_server
    argv = ["--api", "options", "--endpoint", f"127.0.0.1:{server.port}", "--app-id", "a"]
    proc = subprocess.Popen(
        [*_command(), *argv, "--account", "DOT10000001", "ticks", "R_100"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = _lines(proc.stdout)  # type: ignore[arg-type]
        assert re.fullmatch(r"\d+ R_100 \d+\.\d\d", lines.get(timeout=15))
        with server.lock:
            del server.pats[PAT]
        server.drop()
        assert proc.wait(timeout=20) == 1
        assert proc.stderr is not None
        err = proc.stderr.read().splitlines()
    finally:
        proc.kill()
        proc.wait(5)
    assert err[0] == "connection lost (code 1006); reconnecting"
    assert err[-1].startswith("error: cannot get a one-time URL for account DOT10000001: HTTP 401")
    assert len(err) == 2 and PAT not in "\n".join(err)
