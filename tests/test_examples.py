"""Every example runs against LocalServer: as a script with ``--local``, and in-process."""

from __future__ import annotations

import importlib.util
import os
import re
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from deriv_sdk import Connection
from deriv_sdk.testing import LocalServer
from tests.wsserver import wait_until

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TICK = r"\d+ R_100 \d+\.\d+"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script(name: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """Runs ``examples/NAME.py ARGS`` and returns its output lines; exit status must be 0."""
    environ = {k: v for k, v in os.environ.items() if k != "DERIV_TOKEN"}
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=45,
        env=environ,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    return proc.stdout.splitlines()


def test_every_example_is_tested_and_well_formed() -> None:
    names = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    assert names == [
        "options_ticker",
        "options_trade",
        "ping",
        "reconnect",
        "request",
        "threads",
        "ticks",
        "tk_ticker",
        "trade",
    ]
    for name in names:
        text = (EXAMPLES / f"{name}.py").read_text()
        assert 15 <= len(text.splitlines()) <= 60, name
        module = load(name)
        assert module.__doc__ and callable(module.main), name


# --------------------------------------------------------------------------- as scripts


def test_ping_script() -> None:
    out = script("ping", "--local")
    assert out == [
        "received: {'echo_req': {'ping': 1}, 'msg_type': 'ping', 'ping': 'pong'}",
        "closed: 1000 True",
    ]


def test_request_script() -> None:
    out = script("request", "--local")
    assert re.fullmatch(r"server time: \d{4}-.* \(\d+\)", out[0])
    assert out[1] == "site status: up"
    assert re.fullmatch(r"\d+ active symbols, e\.g\. R_10, .*", out[2])
    assert out[3].startswith("API error: InvalidSymbol - ")


def test_ticks_script() -> None:
    out = script("ticks", "--local", "--count", "3")
    ticks = [line for line in out if re.fullmatch(TICK, line)]
    assert len(ticks) == 3
    assert out[-1] == "forgotten, active = False"


def test_trade_script() -> None:
    out = script("trade", "--local")
    assert out[0] == "balance before: 10000.0 USD"
    assert re.fullmatch(r"bought contract \d+ for 10\.0", out[1])
    result = re.fullmatch(r"result: (won|lost) sold for ([\d.]+)", out[-2])
    assert result
    after = float(out[-1].removeprefix("balance after: "))
    assert after == pytest.approx(10000 - 10 + float(result[2]))


def test_options_ticker_script() -> None:
    out = script("options_ticker", "--local", "--count", "3")
    assert re.fullmatch(r"server time: \d+", out[0])
    assert len([line for line in out if re.fullmatch(TICK, line)]) == 3
    assert out[-1] == "forgotten, active = False"


def test_options_trade_script() -> None:
    out = script("options_trade", "--local")
    assert re.fullmatch(r"balance before: 10000\.0 USD DOT\d{8}", out[0])
    assert re.fullmatch(r"bought contract \d+ for 10\.0+", out[1])
    assert all(line.startswith("  spot ") for line in out[2:-2])
    result = re.fullmatch(r"result: (won|lost) sold for ([\d.]+)", out[-2])
    assert result
    after = float(out[-1].removeprefix("balance after: "))
    assert after == pytest.approx(10000 - 10 + float(result[2]))


def test_reconnect_script() -> None:
    out = script("reconnect", "--local", "--count", "6")
    assert out[0] == "open: reconnected=False"
    drop = out.index("-- the server drops the connection --")
    assert out[drop + 1] == "close: code=1006 will_reconnect=True"
    assert "open: reconnected=True" in out[drop:]
    ids = [re.search(r"subscription (\w+)", line)[1] for line in out if line.startswith("tick")]  # type: ignore[index]
    assert len(ids) == 6 and len(set(ids[:3])) == 1 and ids[3] != ids[0] and len(set(ids[3:])) == 1
    assert out[-1] == "close: code=1000 will_reconnect=False"


def test_threads_script() -> None:
    out = script("threads", "--local", "--workers", "6", "--requests", "10")
    assert re.fullmatch(r"60/60 answers matched, \d+ requests/s", out[0])


# --------------------------------------------------------------------------- in-process


def run_main(name: str, capsys: Any, *argv: str) -> list[str]:
    assert load(name).main(list(argv)) == 0
    out: str = capsys.readouterr().out
    return out.splitlines()


def test_ping_main(deriv_server: LocalServer, capsys: Any) -> None:
    out = run_main("ping", capsys, "--url", deriv_server.url)
    assert out[0].startswith("received: ") and "'pong'" in out[0] and out[1] == "closed: 1000 True"


def test_request_main(deriv_server: LocalServer, capsys: Any) -> None:
    out = run_main("request", capsys, "--url", deriv_server.url)
    assert out[1] == "site status: up" and out[3].startswith("API error: InvalidSymbol")


def test_ticks_main(deriv_server: LocalServer, capsys: Any) -> None:
    out = run_main("ticks", capsys, "R_100", "--count", "4", "--url", deriv_server.url)
    assert len([line for line in out if re.fullmatch(TICK, line)]) == 4
    # The server records a request on its own thread: wait for it (the client is done).
    assert wait_until(lambda: any(r.get("forget") for r in deriv_server.requests))


def test_trade_main(
    deriv_server: LocalServer, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERIV_TOKEN", "test-token")
    out = run_main("trade", capsys, "--url", deriv_server.url)
    assert out[0] == "balance before: 10000.0 USD" and out[-2].startswith("result: ")
    calls = [next(iter(r)) for r in deriv_server.requests]
    assert calls[:3] == ["authorize", "proposal", "buy"]


def test_trade_without_token_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DERIV_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exc:
        load("trade").main(["--url", "ws://127.0.0.1:1/"])
    assert exc.value.code == 2


def test_options_ticker_main(deriv_server: LocalServer, capsys: Any) -> None:
    out = run_main(
        "options_ticker", capsys, "R_50", "--count", "2", "--url", deriv_server.options_url
    )
    assert len([line for line in out if re.fullmatch(r"\d+ R_50 \d+\.\d+", line)]) == 2
    assert [h["path"] for h in deriv_server.handshakes] == ["/trading/v1/options/ws/public"]
    assert wait_until(lambda: any(r.get("forget") for r in deriv_server.requests))


DEMO = {"account_id": "DOT20000002", "account_type": "demo", "balance": 500.0}
REAL = {"account_id": "CR20000001", "account_type": "real", "balance": 80.0}


@pytest.mark.deriv_server(pats={"test-pat": [REAL, DEMO]})
def test_options_trade_main_picks_the_demo_account(
    deriv_server: LocalServer, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERIV_TOKEN", "test-pat")
    monkeypatch.setenv("DERIV_APP_ID", "my-app")
    out = run_main("options_trade", capsys, "--rest-url", deriv_server.rest_url)
    assert out[0] == "balance before: 500.0 USD DOT20000002" and out[-2].startswith("result: ")
    assert [(r["method"], r["path"]) for r in deriv_server.rest_requests] == [
        ("GET", "/trading/v1/options/accounts"),
        ("POST", "/trading/v1/options/accounts/DOT20000002/otp"),
    ]
    assert [h["path"] for h in deriv_server.handshakes] == ["/trading/v1/options/ws/demo"]
    calls = [next(iter(r)) for r in deriv_server.requests]
    assert calls == ["balance", "proposal", "buy", "proposal_open_contract", "balance"]
    assert deriv_server.requests[1]["underlying_symbol"] == "R_100"
    with deriv_server.lock:
        real = next(a for a in deriv_server.pats["test-pat"] if a.account_type == "real")
        assert real.balance == 80.0  # only the demo account traded


def test_options_trade_without_credentials_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DERIV_TOKEN", raising=False)
    monkeypatch.setenv("DERIV_APP_ID", "my-app")
    with pytest.raises(SystemExit) as exc:
        load("options_trade").main([])
    assert exc.value.code == 2


def test_reconnect_main(deriv_server: LocalServer, capsys: Any) -> None:
    """With --url nobody drops the link: the ticks just arrive."""
    out = run_main("reconnect", capsys, "--count", "3", "--url", deriv_server.url)
    assert out[0] == "open: reconnected=False" and len(out) == 5


def test_threads_main(deriv_server: LocalServer, capsys: Any) -> None:
    out = run_main(
        "threads", capsys, "--workers", "4", "--requests", "5", "--url", deriv_server.url
    )
    assert out[0].startswith("20/20 answers matched")


def test_tk_ticker_data_path_without_a_display(deriv_server: LocalServer) -> None:
    """The SDK's thread only puts on the queue; the GUI thread drains it."""
    feed = load("tk_ticker").TickFeed()
    with Connection(url=deriv_server.url, keepalive_interval=None, reconnect=False) as conn:
        conn.subscribe({"ticks": "R_100"}, feed.on_tick)
        got = [feed.queue.get(timeout=5) for _ in range(3)]
    for epoch, quote in got:
        assert isinstance(epoch, int) and isinstance(quote, float)
    for item in reversed(got):
        feed.queue.put(item)
    drained = feed.drain()
    assert drained[:3] == list(reversed(got)) and feed.shown == len(drained)
    assert feed.drain() == [] and feed.shown == len(drained)


@pytest.fixture
def xvfb_display() -> Iterator[str]:
    """A private X display (Xvfb picks a free number and reports it through -displayfd)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed: the window of tk_ticker.py is not tested here")
    if importlib.util.find_spec("tkinter") is None:  # e.g. Debian's python3 without python3-tk
        pytest.skip("this Python has no Tkinter: the window of tk_ticker.py is not tested here")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 10)
        number = os.read(read_fd, 16).decode().strip() if ready else ""
        if not number:
            pytest.skip("Xvfb did not start")
        yield f":{number}"
    finally:
        os.close(read_fd)
        proc.terminate()
        proc.wait(5)


def test_tk_ticker_window_under_xvfb(xvfb_display: str) -> None:
    out = script("tk_ticker", "--local", "--count", "5", env={"DISPLAY": xvfb_display})
    assert len(out) >= 5 and all(re.fullmatch(r"\d+ \d+\.\d+", line) for line in out)
