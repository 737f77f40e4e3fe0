"""Helpers for the LocalServer tests: a plain websocket-client client and schema validation.

The tests of ``deriv_sdk.testing`` never use deriv_sdk's own client, so that a client bug
cannot hide a server bug (and the reverse).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
        return self._read()

    def _read(self) -> dict[str, Any]:
        """One message from the socket, decoded."""
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
                message = self._read()
                if match(message):
                    return message
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


# -- the new API ---------------------------------------------------------------------------

PAT = "test-pat"
APP_ID = "test-app"
OPTIONS_SCHEMAS = SCHEMAS / "options"
#: msg_type -> the call whose response schema describes it, where the two differ.
_SCHEMA_OF_MSG_TYPE = {
    "tick": "ticks",
    "history": "ticks_history",
    "candles": "ticks_history",
    "ohlc": "ticks_history",
}


@cache
def options_validator(name: str) -> Any:
    """A validator for ``schemas/options/<name>.schema.json`` (draft-04 WebSocket schemas,
    draft-07 REST ones)."""
    schema = json.loads((OPTIONS_SCHEMAS / f"{name}.schema.json").read_text())
    if "draft-04" in schema.get("$schema", "draft-04"):
        return LenientDraft4(schema)
    return jsonschema.Draft7Validator(schema)


@cache
def rest_error_validator() -> Any:
    """A validator for ``components.schemas.Error`` of Deriv's OpenAPI.

    Lenient in one place only: NEW-API.md section 2.1 documents that the OpenAPI code enum
    is incomplete (``NotFound`` for 404s is in the docs, not in the enum), so ``NotFound`` is
    accepted too.
    """
    doc = json.loads((OPTIONS_SCHEMAS / "rest-api-openapi.json").read_text())
    components = json.loads(json.dumps(doc["components"]))
    enum = components["schemas"]["Error"]["properties"]["errors"]["items"]["properties"]["code"]
    enum["enum"].append("NotFound")
    return jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/Error", "components": components}
    )


def assert_options_valid(message: dict[str, Any]) -> None:
    """Fail unless a new-API WebSocket message validates against the official response schema
    of its ``msg_type`` (and the generic envelope schema)."""
    msg_type = message.get("msg_type")
    assert isinstance(msg_type, str), message
    errors = [
        f"envelope {list(e.path)}: {e.message}" for e in envelope_validator().iter_errors(message)
    ]
    if msg_type != "error":
        name = _SCHEMA_OF_MSG_TYPE.get(msg_type, msg_type)
        validator = options_validator(f"{name}_response")
        errors += [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(message)]
        if msg_type == "tick" and name != "ticks":
            errors += [
                f"tick {list(e.path)}: {e.message}"
                for e in options_validator("ticks_response").iter_errors(message)
            ]
    assert not errors, f"{msg_type}: {errors}\n{json.dumps(message)[:2000]}"


def assert_rest_valid(name: str, status: int, body: Any) -> None:
    """Fail unless a REST body validates: ``<name>_response`` for a 2xx, Deriv's ``Error``
    envelope (with the same ``status`` in it) otherwise."""
    if 200 <= status < 300:
        validator = options_validator(f"{name}_response")
    else:
        validator = rest_error_validator()
        assert body["errors"][0]["status"] == status, body
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, f"{name} {status}: {errors}\n{json.dumps(body)[:2000]}"


def deriv_example(name: str) -> dict[str, Any]:
    """A body from Deriv's documentation (server_data/options-examples: byte-identical copies
    of shared/deriv-api/new-api/examples)."""
    data: dict[str, Any] = json.loads((DATA / "options-examples" / name).read_text())
    return data


def without_timing(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without ``meta.timing`` (checked to be a whole number of milliseconds)."""
    assert isinstance(body["meta"]["timing"], int) and body["meta"]["timing"] >= 0
    meta = {k: v for k, v in body["meta"].items() if k != "timing"}
    return {**body, "meta": meta}


class OptionsClient(Client):
    """A :class:`Client` for the new API's sockets that validates every message it reads
    (replies and every stream message) against the official schemas; ``seen`` counts them."""

    def __init__(self, url: str, timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(url, timeout, **kwargs)
        self.seen: dict[str, int] = {}

    def _read(self) -> dict[str, Any]:
        message = super()._read()
        assert_options_valid(message)
        msg_type = str(message.get("msg_type"))
        self.seen[msg_type] = self.seen.get(msg_type, 0) + 1
        return message


class Rest:
    """A plain ``http.client`` client of the REST API, keeping its connection alive."""

    def __init__(
        self, server: LocalServer, pat: str | None = PAT, app_id: str | None = APP_ID, **kw: Any
    ) -> None:
        url = urlsplit(server.rest_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 0
        self.https = url.scheme == "https"
        self.context = kw.get("context")
        self.headers: dict[str, str] = {}
        if pat is not None:
            self.headers["Authorization"] = f"Bearer {pat}"
        if app_id is not None:
            self.headers["Deriv-App-ID"] = app_id
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=5, context=self.context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=5)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPMessage, Any]:
        """Send one request; returns (status, headers, decoded JSON or text)."""
        all_headers = {**self.headers, **(headers or {})}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=data, headers=all_headers)
        response = self.conn.getresponse()
        raw = response.read()
        ctype = response.getheader("Content-Type") or ""
        decoded: Any = json.loads(raw) if ctype.startswith("application/json") else raw.decode()
        return response.status, response.headers, decoded

    def accounts(self) -> list[dict[str, Any]]:
        status, _, body = self.call("GET", "/trading/v1/options/accounts")
        assert status == 200, body
        assert_rest_valid("get_accounts", status, body)
        accounts: list[dict[str, Any]] = body["data"]
        return accounts

    def otp_url(self, account_id: str) -> str:
        status, _, body = self.call("POST", f"/trading/v1/options/accounts/{account_id}/otp")
        assert status == 200, body
        assert_rest_valid("websocket", status, body)
        url: str = body["data"]["url"]
        return url

    def close(self) -> None:
        self.conn.close()


def demo_client(server: LocalServer, pat: str = PAT) -> OptionsClient:
    """A validating client on the demo socket of ``pat``'s demo account (a fresh OTP)."""
    rest = Rest(server, pat)
    try:
        demo = next(a for a in rest.accounts() if a["account_type"] == "demo")
        return OptionsClient(rest.otp_url(demo["account_id"]))
    finally:
        rest.close()


@pytest.fixture
def options_server() -> Iterator[LocalServer]:
    """A started LocalServer (20 ticks/s) with the v3 ``TOKEN`` and the new API's ``PAT``."""
    srv = LocalServer(tokens=[TOKEN], pats=[PAT], tick_interval=0.05, seed=11)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        assert deriv_threads() == []
