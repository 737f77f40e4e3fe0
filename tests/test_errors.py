"""deriv_sdk.errors: the exception tree, APIError, and the public export list."""

from __future__ import annotations

import pytest

import deriv_sdk
from deriv_sdk import errors
from deriv_sdk.errors import (
    APIError,
    ConnectError,
    ConnectionClosedError,
    DerivError,
    InvalidStateError,
    ProtocolError,
    RequestTimeoutError,
)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (APIError, Exception),
        (ConnectError, ConnectionError),
        (ConnectionClosedError, ConnectionError),
        (RequestTimeoutError, TimeoutError),
        (InvalidStateError, RuntimeError),
        (ProtocolError, ValueError),
    ],
)
def test_tree(cls: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(cls, DerivError)
    assert issubclass(cls, builtin)
    assert issubclass(DerivError, Exception)


def test_mixins_do_not_leak() -> None:
    assert not issubclass(APIError, (ConnectionError, TimeoutError, RuntimeError, ValueError))
    assert not issubclass(ConnectError, (TimeoutError, RuntimeError, ValueError))
    assert not issubclass(RequestTimeoutError, (ConnectionError, RuntimeError, ValueError))
    assert not issubclass(ProtocolError, (ConnectionError, TimeoutError, RuntimeError))
    assert not issubclass(ConnectionClosedError, ConnectError)


def test_except_builtin_catches_ours() -> None:
    with pytest.raises(TimeoutError):
        raise RequestTimeoutError("slow")
    with pytest.raises(ConnectionError):
        raise ConnectionClosedError()
    with pytest.raises(OSError):
        raise ConnectError("refused")


def test_errors_all() -> None:
    assert sorted(errors.__all__) == [
        "APIError",
        "ConnectError",
        "ConnectionClosedError",
        "DerivError",
        "InvalidStateError",
        "ProtocolError",
        "RequestTimeoutError",
        "RestError",
    ]


def test_api_error_from_response() -> None:
    response = {
        "echo_req": {"authorize": "<not shown>", "req_id": 3},
        "error": {"code": "InvalidToken", "message": "The token is invalid.", "details": {"f": 1}},
        "msg_type": "authorize",
        "req_id": 3,
    }
    exc = APIError.from_response(response)
    assert (exc.code, exc.message, exc.details, exc.msg_type, exc.req_id) == (
        "InvalidToken",
        "The token is invalid.",
        {"f": 1},
        "authorize",
        3,
    )
    assert exc.echo_req == {"authorize": "<not shown>", "req_id": 3}
    assert str(exc) == "InvalidToken: The token is invalid. (authorize, req_id 3)"
    assert repr(exc) == ("APIError(code='InvalidToken', message='The token is invalid.', req_id=3)")
    assert exc.args == ("InvalidToken", "The token is invalid.")


def test_api_error_str_variants() -> None:
    assert str(APIError("X", "m")) == "X: m"
    assert str(APIError("X", "m", msg_type="buy")) == "X: m (buy)"
    assert str(APIError("X", "m", req_id=7)) == "X: m (req_id 7)"


def test_api_error_from_malformed_response() -> None:
    exc = APIError.from_response({"error": "nope", "req_id": "3", "echo_req": [1]})
    assert (exc.code, exc.message, exc.details, exc.msg_type, exc.req_id, exc.echo_req) == (
        "UnknownError",
        "",
        None,
        None,
        None,
        None,
    )
    assert str(exc) == "UnknownError: "
    assert APIError.from_response({}).code == "UnknownError"
    assert APIError.from_response({"error": {"code": 5, "message": None}}).message == "None"


def test_api_error_defaults() -> None:
    exc = APIError("RateLimit", "Too many", req_id=1)
    assert isinstance(exc, DerivError)
    assert exc.details is None and exc.echo_req is None and exc.msg_type is None


def test_connect_error_status() -> None:
    assert ConnectError("x").status is None
    exc = ConnectError("handshake rejected", status=403)
    assert (str(exc), exc.status) == ("handshake rejected", 403)


def test_connection_closed_error_fields() -> None:
    exc = ConnectionClosedError()
    assert (str(exc), exc.code, exc.reason) == ("connection closed", 1006, "")
    exc = ConnectionClosedError("closed by server", 1001, "going away")
    assert (str(exc), exc.code, exc.reason) == ("closed by server", 1001, "going away")


def test_protocol_error_payload() -> None:
    assert ProtocolError("bad").payload == b""
    assert ProtocolError("bad", "{x").payload == "{x"
    assert ProtocolError("bad", b"\xff").payload == b"\xff"


def test_errors_all_names_exist() -> None:
    assert set(vars(errors)) >= set(errors.__all__)


PUBLIC = [
    "APIError",
    "CloseEvent",
    "ConnectError",
    "Connection",
    "ConnectionClosedError",
    "DerivError",
    "ErrorEvent",
    "Event",
    "InvalidStateError",
    "MessageEvent",
    "OpenEvent",
    "ProtocolError",
    "RequestTimeoutError",
    "RestClient",
    "RestError",
    "Subscription",
    "__version__",
]


def test_public_exports_pinned() -> None:
    assert sorted(deriv_sdk.__all__) == sorted(PUBLIC)
    assert len(deriv_sdk.__all__) == len(set(deriv_sdk.__all__))


@pytest.mark.parametrize("name", PUBLIC)
def test_every_export_exists(name: str) -> None:
    assert hasattr(deriv_sdk, name)
    assert getattr(deriv_sdk, name) is not None


def test_exports_are_the_real_objects() -> None:
    assert deriv_sdk.APIError is APIError
    assert deriv_sdk.DerivError is DerivError
    assert isinstance(deriv_sdk.__version__, str)
    namespace: dict[str, object] = {}
    exec("from deriv_sdk import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(PUBLIC)
