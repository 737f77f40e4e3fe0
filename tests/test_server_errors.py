"""LocalServer's errors, in Deriv's envelope, with the req_id echoed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deriv_sdk.testing import LocalServer
from tests.server_helpers import TOKEN, Client, assert_valid, client, server

__all__ = ["client", "server"]  # fixtures

pytestmark = pytest.mark.timeout(30)


def _error(reply: dict[str, Any], code: str, msg_type: str, req_id: int | None) -> dict[str, Any]:
    assert set(reply) <= {"echo_req", "error", "msg_type", "req_id", "passthrough"}, reply
    assert reply["error"]["code"] == code, reply
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    assert reply["msg_type"] == msg_type
    assert reply.get("req_id") == req_id
    assert isinstance(reply["echo_req"], dict)
    error: dict[str, Any] = reply["error"]
    return error


def test_unknown_field_is_input_validation_failed(client: Client) -> None:
    reply = client.request({"ping": 1, "colour": "red", "req_id": 11})
    error = _error(reply, "InputValidationFailed", "ping", 11)
    assert error["details"] == {"colour": "Properties not allowed"}
    assert "colour" in error["message"]
    assert reply["echo_req"] == {"ping": 1, "colour": "red", "req_id": 11}
    assert_valid("ping", reply)


def test_wrong_type_names_the_field(client: Client) -> None:
    reply = client.request({"ticks_history": "R_50", "end": "latest", "count": "ten", "req_id": 12})
    error = _error(reply, "InputValidationFailed", "history", 12)
    assert list(error["details"]) == ["count"]


def test_missing_required_field_names_it(client: Client) -> None:
    reply = client.request({"ticks_history": "R_50", "req_id": 13})
    assert _error(reply, "InputValidationFailed", "history", 13)["details"] == {
        "end": "Missing required field"
    }


def test_unknown_call_is_unrecognised_request(client: Client) -> None:
    reply = client.request({"teleport": 1, "req_id": 21})
    _error(reply, "UnrecognisedRequest", "error", 21)
    # A call that Deriv has but this server does not implement: also UnrecognisedRequest,
    # answered before validation.
    reply = client.request({"p2p_advert_list": 1, "anything": "goes", "req_id": 22})
    _error(reply, "UnrecognisedRequest", "error", 22)


def test_balance_before_authorize(client: Client) -> None:
    reply = client.request({"balance": 1, "subscribe": 1, "req_id": 2})
    _error(reply, "AuthorizationRequired", "balance", 2)
    assert reply == {
        "echo_req": {"balance": 1, "subscribe": 1, "req_id": 2},
        "error": {"code": "AuthorizationRequired", "message": "Please log in."},
        "msg_type": "balance",
        "req_id": 2,
    }


def test_second_identical_ticks_subscription(client: Client) -> None:
    first = client.request({"ticks": "R_100", "subscribe": 1, "req_id": 31})
    assert "error" not in first
    reply = client.request({"ticks": "R_100", "subscribe": 1, "req_id": 32})
    _error(reply, "AlreadySubscribed", "tick", 32)
    assert_valid("ticks", reply)
    # The first stream goes on.
    sub = first["subscription"]["id"]
    client.wait_for(lambda m: m.get("subscription", {}).get("id") == sub)
    # A ticks_history tick stream of the same symbol is the same stream on Deriv.
    reply = client.request({"ticks_history": "R_100", "end": "latest", "subscribe": 1})
    assert reply["error"]["code"] == "AlreadySubscribed"


def test_invalid_token(client: Client) -> None:
    reply = client.request({"authorize": "nope", "req_id": 41})
    _error(reply, "InvalidToken", "authorize", 41)
    assert reply["echo_req"]["authorize"] == "<not shown>"


def test_market_is_closed(client: Client) -> None:
    reply = client.request({"ticks": "frxEURUSD", "subscribe": 1, "req_id": 51})
    _error(reply, "MarketIsClosed", "tick", 51)
    proposal = {
        "proposal": 1,
        "amount": 10,
        "basis": "stake",
        "contract_type": "CALL",
        "currency": "USD",
        "duration": 5,
        "duration_unit": "t",
        "symbol": "frxEURUSD",
        "req_id": 52,
    }
    _error(client.request(proposal), "MarketIsClosed", "proposal", 52)


def test_insufficient_balance() -> None:
    with LocalServer(tokens={"poor": {"balance": 3}}) as srv:
        c = Client(srv.url)
        c.request({"authorize": "poor"})
        parameters = {
            "amount": 10,
            "basis": "stake",
            "contract_type": "CALL",
            "currency": "USD",
            "duration": 5,
            "duration_unit": "t",
            "symbol": "R_10",
        }
        reply = c.request({"buy": "1", "price": 10, "parameters": parameters, "req_id": 61})
        _error(reply, "InsufficientBalance", "buy", 61)
        assert c.request({"balance": 1})["balance"]["balance"] == 3
        c.close()


def test_invalid_contract_proposal(client: Client) -> None:
    client.request({"authorize": TOKEN})
    reply = client.request({"buy": "f" * 32, "price": 10, "req_id": 71})
    _error(reply, "InvalidContractProposal", "buy", 71)


def test_passthrough_is_echoed_on_errors(client: Client) -> None:
    reply = client.request({"balance": 1, "passthrough": {"k": "v"}, "req_id": 81})
    assert reply["passthrough"] == {"k": "v"}
    assert reply["echo_req"]["passthrough"] == {"k": "v"}


def test_not_json_and_binary_frames_get_an_error_envelope(client: Client) -> None:
    client.ws.send("{this is not json")
    reply = client.recv()
    _error(reply, "InputValidationFailed", "error", None)
    client.ws.send_binary(b"\x00\x01binary")
    reply = client.recv()
    _error(reply, "InputValidationFailed", "error", None)
    client.ws.send(json.dumps([1, 2]))
    _error(client.recv(), "InputValidationFailed", "error", None)
    # The connection stays usable.
    assert client.request({"ping": 1})["ping"] == "pong"
