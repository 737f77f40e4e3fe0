"""Helpers for the LocalServer tests: a plain websocket-client client and schema validation.

The tests of ``deriv_sdk.testing`` never use deriv_sdk's own client, so that a client bug
cannot hide a server bug (and the reverse).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import websocket

import deriv_sdk.testing
from deriv_sdk.testing import LocalServer

DATA = Path(__file__).parent / "server_data"
#: The schemas shipped with deriv_sdk.testing (byte-identical copies of Deriv's files).
SCHEMAS = Path(deriv_sdk.testing.__file__).parent / "schemas"
TOKEN = "test-token"
#: Deriv's own authorize/example.json token: the servers of these tests accept it.
EXAMPLE_TOKEN = "uw2mk7no3oktoRVVsB4Dz7TQncfABuFDgO95dlxfMxRuPUDz"


def _lenient_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    """``pattern`` that skips PCRE-only patterns (``\\p{L}``) Python's re cannot compile."""
    if not isinstance(instance, str):
        return
    try:
        compiled = re.compile(pattern)
    except re.error:
        return  # a PCRE pattern: not checkable with re; none of the implemented calls has one
    if not compiled.search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


LenientDraft4 = jsonschema.validators.extend(
    jsonschema.Draft4Validator, {"pattern": _lenient_pattern}
)


@cache
def receive_validator(call: str) -> Any:
    """A validator for the official receive.json of ``call`` (the package's v3 copy)."""
    schema = json.loads((SCHEMAS / "v3" / call / "receive.json").read_text())
    return LenientDraft4(schema)


@cache
def envelope_validator() -> Any:
    """A validator for derived/response-envelope.schema.json (not official)."""
    return LenientDraft4(json.loads((DATA / "response-envelope.schema.json").read_text()))


def example(call: str) -> dict[str, Any]:
    """The official example request of ``call``."""
    data: dict[str, Any] = json.loads((SCHEMAS / "v3" / call / "example.json").read_text())
    return data


def assert_valid(call: str, message: dict[str, Any]) -> None:
    """Fail with every schema error of ``message`` against the receive.json of ``call``."""
    errors = [f"{list(e.path)}: {e.message}" for e in receive_validator(call).iter_errors(message)]
    errors += [
        f"envelope {list(e.path)}: {e.message}" for e in envelope_validator().iter_errors(message)
    ]
    assert not errors, f"{call}: {errors}\n{json.dumps(message)[:2000]}"


class Client:
    """A blocking websocket-client connection that decodes JSON and matches ``req_id``s."""

    def __init__(self, url: str, timeout: float = 5.0, **kwargs: Any) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout, **kwargs)
        self.backlog: list[dict[str, Any]] = []
        self._next_id = 1000

    def send(self, payload: dict[str, Any]) -> None:
        self.ws.send(json.dumps(payload))

    def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next message, from the backlog first."""
        if self.backlog:
            return self.backlog.pop(0)
        self.ws.settimeout(timeout)
        message: dict[str, Any] = json.loads(self.ws.recv())
        return message

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first message that ``match``es (others are kept in the backlog, in order)."""
        for i, message in enumerate(self.backlog):
            if match(message):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        kept: list[dict[str, Any]] = []
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no matching message")
                self.ws.settimeout(remaining)
                message = json.loads(self.ws.recv())
                if match(message):
                    return message  # type: ignore[no-any-return]
                kept.append(message)
        finally:
            self.backlog.extend(kept)

    def request(self, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send ``payload`` (with a fresh ``req_id`` unless it has one) and wait for its reply."""
        if "req_id" not in payload:
            self._next_id += 1
            payload = {**payload, "req_id": self._next_id}
        self.send(payload)
        req_id = payload["req_id"]
        return self.wait_for(lambda m: m.get("req_id") == req_id, timeout)

    def close(self) -> None:
        self.ws.close(timeout=1)


def deriv_threads() -> list[str]:
    """Names of the live threads of the server."""
    return [t.name for t in threading.enumerate() if t.name.startswith("deriv_sdk-server")]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A started LocalServer (20 ticks/s) accepting ``TOKEN`` and Deriv's example token."""
    srv = LocalServer(tokens=[TOKEN, EXAMPLE_TOKEN], tick_interval=0.05, seed=7)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        assert deriv_threads() == []


@pytest.fixture
def client(server: LocalServer) -> Iterator[Client]:
    """A plain client connected to ``server``."""
    c = Client(server.url)
    try:
        yield c
    finally:
        c.close()
