"""Shared fixtures: the thread-leak guard and a scriptable WebSocket server.

Deriv-shaped behaviour is tested against ``deriv_sdk.testing.LocalServer`` (the
``deriv_server`` fixture of our pytest plugin). ``ScriptServer`` is for what a faithful
Deriv server never does: answer out of order, send binary or broken frames, reject a
handshake with an arbitrary HTTP status.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tests.wsserver import ScriptServer

# A shell without job control starts a background job (`pytest ... &` in a script) with SIGINT
# ignored; children inherit an ignored signal, Python then installs no KeyboardInterrupt
# handler in them, and the tests that press Ctrl-C on a child process wait in vain. A handled
# signal is reset to the default at exec, so with this the children see Ctrl-C as they would
# from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _sdk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("deriv_sdk-") and t.is_alive()]


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fails a test that leaves a ``deriv_sdk-*`` thread alive after its fixtures end.

    Autouse fixtures are set up first, so this one is torn down last: the servers and
    connections of the test are already stopped when it looks.
    """
    before = set(_sdk_threads())
    yield
    deadline = time.monotonic() + 2.0
    left = [t for t in _sdk_threads() if t not in before]
    while left and time.monotonic() < deadline:
        left[0].join(0.05)
        left = [t for t in _sdk_threads() if t not in before]
    assert not left, f"threads left alive: {[t.name for t in left]}"


@pytest.fixture
def script_server() -> Iterator[ScriptServer]:
    with ScriptServer() as server:
        yield server
