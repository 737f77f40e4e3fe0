"""deriv_sdk.protocol: encoding, req_id stamping, classification and stream keys."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from deriv_sdk import protocol
from deriv_sdk.frames import OP_BINARY, OP_TEXT
from deriv_sdk.protocol import (
    JSON_BACKEND,
    Kind,
    call_name,
    classify,
    encode_send,
    stamp,
    stream_key,
    stream_type,
)

# --- encode_send ---------------------------------------------------------------------------


def test_encode_send_dict() -> None:
    opcode, payload = encode_send({"ticks": "R_50", "subscribe": 1, "name": "é"})
    assert opcode == OP_TEXT
    assert isinstance(payload, bytes)
    assert json.loads(payload) == {"ticks": "R_50", "subscribe": 1, "name": "é"}
    assert "é".encode() in payload  # UTF-8, not \u escapes


def test_encode_send_list() -> None:
    opcode, payload = encode_send([1, "a", {"b": None}])
    assert opcode == OP_TEXT
    assert json.loads(payload) == [1, "a", {"b": None}]


def test_encode_send_str_is_sent_verbatim() -> None:
    assert encode_send('{"ping": 1}') == (OP_TEXT, b'{"ping": 1}')
    assert encode_send("héllo") == (OP_TEXT, "héllo".encode())


@pytest.mark.parametrize("data", [b"\x00\xffab", bytearray(b"ab"), memoryview(b"ab")])
def test_encode_send_bytes_is_binary(data: bytes) -> None:
    opcode, payload = encode_send(data)
    assert opcode == OP_BINARY
    assert payload == bytes(data)
    assert type(payload) is bytes


@pytest.mark.parametrize(
    "data",
    [{1, 2}, object(), 3, None, 1.5, ({"a": 1},), {"a": object()}, [object()], {"a": {1, 2}}],
    ids=["set", "object", "int", "None", "float", "tuple", "dict-object", "list-object", "d-set"],
)
def test_encode_send_type_error(data: object) -> None:
    with pytest.raises(TypeError):
        encode_send(data)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encode_send_nan_is_type_error(value: float) -> None:
    with pytest.raises(TypeError):
        encode_send({"amount": value})


@pytest.mark.parametrize("data", [{"a": "\ud800"}, ["\udfff"], {(1, 2): 1}])
def test_encode_send_unencodable_json_is_type_error(data: object) -> None:
    with pytest.raises(TypeError):
        encode_send(data)


def test_encode_send_unencodable_str_is_type_error() -> None:
    with pytest.raises(TypeError):
        encode_send("\ud800")


def test_encode_send_circular_is_type_error() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(TypeError):
        encode_send(loop)


# --- stamp ---------------------------------------------------------------------------------


def test_stamp_copies_and_keeps_other_fields() -> None:
    request = {"ticks": "R_50", "subscribe": 1, "req_id": 99, "passthrough": {"x": [1]}}
    before = copy.deepcopy(request)
    out = stamp(request, 7)
    assert request == before
    assert out is not request
    assert out == {**before, "req_id": 7}


def test_stamp_extra_fields() -> None:
    request = {"ping": 1}
    out = stamp(request, 3, subscribe=1, passthrough={"k": 1})
    assert out == {"ping": 1, "subscribe": 1, "passthrough": {"k": 1}, "req_id": 3}
    assert request == {"ping": 1}


# --- classify ------------------------------------------------------------------------------


def test_classify_response() -> None:
    assert classify({"msg_type": "ping", "ping": "pong", "req_id": 4}) == (Kind.RESPONSE, 4, None)


def test_classify_stream() -> None:
    msg = {"msg_type": "tick", "req_id": 2, "subscription": {"id": "abc"}}
    assert classify(msg) == (Kind.STREAM, 2, "abc")
    assert classify({"msg_type": "tick", "subscription": {"id": "abc"}}) == (
        Kind.STREAM,
        None,
        "abc",
    )


def test_classify_error_wins_over_subscription() -> None:
    msg = {"error": {"code": "X"}, "req_id": 5, "subscription": {"id": "abc"}}
    assert classify(msg) == (Kind.ERROR, 5, None)
    assert classify({"error": {"code": "X"}}) == (Kind.ERROR, None, None)


def test_classify_unsolicited() -> None:
    assert classify({"msg_type": "website_status"}) == (Kind.UNSOLICITED, None, None)
    # A subscription without a string id is not a stream.
    assert classify({"subscription": {"id": 5}}) == (Kind.UNSOLICITED, None, None)
    assert classify({"subscription": "abc", "req_id": 1}) == (Kind.RESPONSE, 1, None)


@pytest.mark.parametrize("message", [[1, 2], "text", 3, None, b"{}"])
def test_classify_non_dict(message: object) -> None:
    assert classify(message) == (Kind.UNSOLICITED, None, None)


@pytest.mark.parametrize("req_id", [True, False, "3", 3.0, None])
def test_classify_non_int_req_id_is_ignored(req_id: object) -> None:
    assert classify({"msg_type": "ping", "req_id": req_id}) == (Kind.UNSOLICITED, None, None)
    assert classify({"error": {}, "req_id": req_id}) == (Kind.ERROR, None, None)


# --- stream_key / stream_type / call_name ---------------------------------------------------


def test_stream_key_ignores_envelope_and_order() -> None:
    a = {"ticks": "R_50", "subscribe": 1, "req_id": 1, "passthrough": {"a": 1}}
    b = {"req_id": 2, "ticks": "R_50"}
    assert stream_key(a) == stream_key(b)
    c = {"proposal": 1, "amount": 10, "basis": "stake", "contract_type": "CALL"}
    d = {"contract_type": "CALL", "basis": "stake", "amount": 10, "proposal": 1, "subscribe": 1}
    assert stream_key(c) == stream_key(d)


def test_stream_key_distinguishes_content() -> None:
    assert stream_key({"ticks": "R_50"}) != stream_key({"ticks": "R_100"})
    assert stream_key({"ticks": "R_50"}) != stream_key({"ticks": "R_50", "loginid": "CR1"})
    assert stream_key({"proposal": 1, "amount": 10}) != stream_key({"proposal": 1, "amount": 11})


def test_stream_key_nested_order_independent() -> None:
    a = {"p2p_order_list": 1, "x": {"b": 1, "a": 2}}
    b = {"x": {"a": 2, "b": 1}, "p2p_order_list": 1}
    assert stream_key(a) == stream_key(b)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"ticks": "R_50", "subscribe": 1}, "ticks"),
        ({"ticks_history": "R_50", "style": "candles", "subscribe": 1}, "candles"),
        ({"ticks_history": "R_50", "style": "ticks", "subscribe": 1}, "ticks"),
        ({"ticks_history": "R_50", "subscribe": 1}, "ticks"),
        ({"proposal": 1, "amount": 10}, "proposal"),
        ({"buy": "1", "price": 10, "subscribe": 1}, "proposal_open_contract"),
        ({"proposal_open_contract": 1}, "proposal_open_contract"),
        ({"balance": 1}, "balance"),
        ({"p2p_order_info": 1}, "p2p_order"),
        ({"exchange_rates": 1, "base_currency": "USD"}, None),
        ({"ticks_batch": "forex"}, None),
        ({"req_id": 1, "subscribe": 1}, None),
        ({"subscribe": 1, "req_id": 3, "ticks": "R_50"}, "ticks"),
    ],
)
def test_stream_type(request_: dict, expected: str | None) -> None:
    assert stream_type(request_) == expected


def test_call_name_skips_envelope_fields() -> None:
    assert call_name({"ping": 1}) == "ping"
    assert call_name(
        {"req_id": 1, "passthrough": {}, "loginid": "x", "subscribe": 1, "ticks": 1}
    ) == ("ticks")
    assert call_name({"req_id": 1, "subscribe": 1, "ticks": "R_50"}) == "ticks"
    assert call_name({"loginid": "CR1", "balance": 1, "account": "all"}) == "balance"


@pytest.mark.parametrize("payload", [{}, {"req_id": 1}, {"subscribe": 1, "passthrough": {}}])
def test_call_name_none(payload: dict) -> None:
    with pytest.raises(ValueError, match="names no Deriv call"):
        call_name(payload)


# --- JSON backend --------------------------------------------------------------------------


def test_backend_consistent() -> None:
    assert JSON_BACKEND in ("json", "orjson")
    assert protocol.loads(protocol.dumps({"a": [1, "é"]})) == {"a": [1, "é"]}


def _run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "DERIV_SDK_NO_ORJSON"}
    environ.update(env)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


def test_no_orjson_env_var_selects_json() -> None:
    code = (
        "import deriv_sdk.protocol as p\n"
        "try:\n"
        "    p.encode_send({'a': float('nan')})\n"
        "except TypeError:\n"
        "    nan = 'TypeError'\n"
        "else:\n"
        "    nan = 'encoded'\n"
        "print(p.JSON_BACKEND, p.dumps({'a': 1}).decode(), nan)"
    )
    assert _run(code, DERIV_SDK_NO_ORJSON="1") == 'json {"a":1} TypeError'


def test_backend_without_env_var() -> None:
    try:
        import orjson  # noqa: F401
    except ImportError:
        expected = "json"
    else:
        expected = "orjson"
    assert _run("import deriv_sdk.protocol as p; print(p.JSON_BACKEND)") == expected
