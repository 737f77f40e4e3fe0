"""The typed examples (examples/typed/) run against LocalServer, as scripts with ``--local``
and in-process; the trade one says what examples/trade.py says."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from deriv_sdk.testing import LocalServer
from tests.wsserver import wait_until

pytestmark = pytest.mark.timeout(60)

TYPED = Path(__file__).resolve().parent.parent / "examples" / "typed"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"typed_example_{name}", TYPED / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script(name: str, *args: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DERIV_TOKEN"}
    proc = subprocess.run(
        [sys.executable, str(TYPED / f"{name}.py"), *args],
        capture_output=True, text=True, timeout=45, env=environ,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "", proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def test_every_typed_example_is_tested_and_well_formed() -> None:
    names = sorted(p.stem for p in TYPED.glob("*.py"))
    assert names == ["candles", "trade"]
    for name in names:
        assert 15 <= len((TYPED / f"{name}.py").read_text().splitlines()) <= 60, name
        module = load(name)
        assert module.__doc__ and callable(module.main), name


def check_trade(out: list[str]) -> None:
    assert out[0] == "balance before: 10000.0 USD"
    assert re.fullmatch(r"bought contract \d+ for 10\.0", out[1])
    result = re.fullmatch(r"result: (won|lost) sold for ([\d.]+)", out[-2])
    assert result
    after = float(out[-1].removeprefix("balance after: "))
    assert after == pytest.approx(10000 - 10 + float(result[2]))


def test_trade_script() -> None:
    check_trade(script("trade", "--local"))


def test_trade_main(
    deriv_server: LocalServer, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERIV_TOKEN", "test-token")
    assert load("trade").main(["--url", deriv_server.url]) == 0
    check_trade(capsys.readouterr().out.splitlines())
    calls = [next(iter(r)) for r in deriv_server.requests]
    assert calls[:4] == ["authorize", "proposal", "buy", "proposal_open_contract"]


def test_candles_script() -> None:
    out = script("candles", "--local", "--count", "2")
    assert [line.split()[0] for line in out] == ["candle"] * 3 + ["update"] * 2
    assert all(re.fullmatch(r"update \d+ [\d.]+ [\d.]+", line) for line in out[3:])


def test_candles_main(deriv_server: LocalServer, capsys: Any) -> None:
    assert load("candles").main(["--count", "3", "--url", deriv_server.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if line.startswith("update ")]) == 3
    # forget() does not wait for its answer: the server may see it after main() returned.
    assert wait_until(lambda: any(r.get("forget") for r in deriv_server.requests))
