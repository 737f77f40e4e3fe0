"""The README's code runs, so that it cannot rot.

- Every ```python block is executed against a LocalServer: ``deriv_sdk.Connection`` is
  replaced by a subclass whose default URL is the server's, so ``Connection(app_id=1089)``
  in the README talks to loopback, never to Deriv. A ``test_*`` function that a block
  defines is called with the ``deriv_server`` fixture.
- The ```bash block after ``<!-- test: cli -->`` is run line by line through ``cli.main``.
- The two commands at the top are the install-and-run commands that the tests and CI use.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import deriv_sdk
from deriv_sdk.cli import main as cli_main
from deriv_sdk.testing import LocalServer

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
FIRST = "pip install -e '.[testing]' && python examples/ping.py --local"
SECOND = "pip install -e '.[dev]' && python -m pytest"

_BLOCK = re.compile(
    r"(?:<!-- test: (?P<mark>[\w-]+) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.S
)


def blocks(lang: str) -> list[tuple[str | None, str]]:
    return [(m["mark"], m["code"]) for m in _BLOCK.finditer(README) if m["lang"] == lang]


PYTHON = [code for mark, code in blocks("python") if mark != "skip"]


def test_the_two_commands_come_first() -> None:
    first_block = next(_BLOCK.finditer(README))
    assert README[: first_block.start()].strip() == "# deriv_sdk"
    assert first_block["code"].splitlines() == [FIRST, SECOND]


def test_ci_runs_the_readmes_test_command() -> None:
    ci = ROOT / ".ci" / "run"
    if not ci.exists():
        pytest.skip(".ci/run does not exist in this checkout")
    assert "python -m pytest" in ci.read_text()


def test_the_first_command_runs_the_ping_example() -> None:
    """The part after ``&&`` (the install is checked in a fresh venv, not here)."""
    command = shlex.split(FIRST.split("&&")[1])
    assert command[0] == "python"
    proc = subprocess.run(
        [sys.executable, *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert "'ping': 'pong'" in proc.stdout


def test_the_python_port_of_the_guide_is_the_example() -> None:
    """The guide's Python in the README is ``examples/ping.py``'s core, line for line."""
    example = (ROOT / "examples" / "ping.py").read_text()
    (guide,) = [code for code in PYTHON if "conn.send({" in code]
    for needle in (
        'conn.on("open", lambda event: conn.send({"ping": 1}))',
        'print("received:", event.data)',
        'if event.msg_type == "ping":',
        'conn.on("close", lambda event: print("closed:", event.code, event.was_clean))',
        'conn.on("error", lambda event: print("error:", event.message))',
        "conn.connect()",
        "conn.wait()",
    ):
        assert needle in guide and needle in example


@pytest.fixture
def local_connection(deriv_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> LocalServer:
    """Makes ``from deriv_sdk import Connection`` connect to the fixture's server."""

    base = deriv_sdk.Connection

    class Connection(base):  # type: ignore[valid-type,misc]
        def __init__(self, app_id: Any = None, **kwargs: Any) -> None:
            if kwargs.get("url") is None:  # Deriv's v3 URL: the local server's instead
                for name in ("endpoint", "language", "brand"):
                    kwargs.pop(name, None)
                super().__init__(url=deriv_server.url, **kwargs)
            else:
                super().__init__(app_id, **kwargs)

        @classmethod
        def options(cls, account_id: Any = None, **kwargs: Any) -> Any:
            if account_id is None and kwargs.get("url") is None:  # the public socket
                kwargs["url"] = deriv_server.options_url
            return base.options.__func__(cls, account_id, **kwargs)  # type: ignore[attr-defined]

    class RestClient(deriv_sdk.RestClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("base_url", deriv_server.rest_url)  # Deriv's REST: the server's
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(deriv_sdk, "Connection", Connection)
    monkeypatch.setattr(deriv_sdk, "RestClient", RestClient)
    # A block may configure logging (the README's Logging section): undo it after the test.
    root, sdk = logging.getLogger(), logging.getLogger("deriv_sdk")
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(sdk, "level", sdk.level)
    monkeypatch.setenv("DERIV_TOKEN", "test-pat")  # (the README's new-API block reads a PAT)
    return deriv_server


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_block_runs(
    local_connection: LocalServer, capsys: pytest.CaptureFixture[str], index: int
) -> None:
    namespace: dict[str, Any] = {"__name__": f"readme_block_{index}"}
    exec(compile(PYTHON[index], f"README.md python block {index}", "exec"), namespace)
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value(local_connection)
    assert capsys.readouterr().err == ""


def test_blocks_found() -> None:
    assert len(PYTHON) >= 5
    assert [mark for mark, _ in blocks("bash")].count("cli") == 1


def test_cli_block_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (code,) = [code for mark, code in blocks("bash") if mark == "cli"]
    for line in code.splitlines():
        words = shlex.split(line)
        monkeypatch.delenv("DERIV_TOKEN", raising=False)
        while "=" in words[0]:
            name, value = words.pop(0).split("=", 1)
            monkeypatch.setenv(name, value)
        assert words[0] == "deriv-sdk", line
        assert "--local" in words, f"{line}: the README's CLI lines must run offline"
        assert cli_main(words[1:]) == 0, line
        out = capsys.readouterr().out.splitlines()
        assert out, line
        if "--json" in words or words[1:3] == ["--local", "call"]:
            for item in out:
                json.loads(item)
