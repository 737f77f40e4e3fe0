"""Every call of the new API's sockets on LocalServer, with a plain websocket-client client that
validates every message it reads (replies and stream messages) against the official
``schemas/options/<call>_response.schema.json``; errors in Deriv's shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deriv_sdk.testing import LocalServer
from deriv_sdk.testing.pats import derive_account_id
from tests.server_helpers import (
    PAT,
    Client,
    OptionsClient,
    assert_options_valid,
    demo_client,
    deriv_example,
    options_server,
)

__all__ = ["options_server"]  # fixtures

pytestmark = pytest.mark.timeout(30)

PROPOSAL = {
    "proposal": 1,
    "amount": 10,
    "basis": "stake",
    "contract_type": "CALL",
    "currency": "USD",
    "duration": 5,
    "duration_unit": "t",
    "underlying_symbol": "R_100",
}

PARAMETERS = ("amount", "basis", "contract_type", "currency", "duration", "duration_unit")
PARAMETERS += ("underlying_symbol",)

#: The new API's calls whose schema has ``auth_required: 1`` and one valid request of each.
AUTH_CALLS: dict[str, dict[str, Any]] = {
    "balance": {"balance": 1},
    "buy": {"buy": "1", "price": 10, "parameters": {k: PROPOSAL[k] for k in PARAMETERS}},
    "sell": {"sell": 1, "price": 0},
    "proposal_open_contract": {"proposal_open_contract": 1},
    "portfolio": {"portfolio": 1},
    "profit_table": {"profit_table": 1},
    "statement": {"statement": 1},
    "transaction": {"transaction": 1, "subscribe": 1},
    "logout": {"logout": 1},
}  # fmt: skip


CANDLES = {"end": "latest", "count": 5, "style": "candles", "granularity": 60}


@pytest.fixture
def public(options_server: LocalServer) -> Iterator[OptionsClient]:
    c = OptionsClient(options_server.options_url)
    try:
        yield c
    finally:
        c.close()


def stream(c: OptionsClient, first: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The next ``count`` messages of the stream ``first`` started (each one validated)."""
    sub = first["subscription"]["id"]
    return [c.wait_for(lambda m: m.get("subscription", {}).get("id") == sub) for _ in range(count)]


@pytest.mark.parametrize(
    "request_",
    [
        {"ping": 1},
        {"time": 1},
        {"active_symbols": "brief"},
        {"active_symbols": "full", "contract_type": ["CALL"]},
        {"contracts_for": "R_100"},
        {"contracts_for": "frxEURUSD"},
        {"contracts_list": 1},
        {"trading_times": "today"},
        {"trading_times": "2026-01-05"},
        {"ticks_history": "R_50", "end": "latest", "count": 10},
        {**CANDLES, "ticks_history": "R_50"},
        PROPOSAL,
        {**PROPOSAL, "barrier": "+0.5", "duration": 60, "duration_unit": "s"},
        {"forget": "0123456789abcdef0123456789abcdef"},
        {"forget_all": ["ticks", "proposal"]},
    ],
    ids=lambda r: next(iter(r)),
)  # fmt: skip
def test_public_calls_answer_in_the_new_shapes(
    public: OptionsClient, request_: dict[str, Any]
) -> None:
    reply = public.request({**request_, "passthrough": {"n": 1}})
    assert "error" not in reply, reply
    assert reply["passthrough"] == {"n": 1}
    assert reply["echo_req"]["passthrough"] == {"n": 1}  # validated by OptionsClient too


def test_active_symbols_new_fields(public: OptionsClient) -> None:
    reply = public.request({"active_symbols": "brief"})
    symbols = {s["underlying_symbol"]: s for s in reply["active_symbols"]}
    assert {"R_10", "R_100", "frxEURUSD"} <= set(symbols)
    r100 = symbols["R_100"]
    assert r100["pip_size"] == 0.01 and r100["underlying_symbol_name"] == "Volatility 100 Index"
    assert r100["exchange_is_open"] == 1 and symbols["frxEURUSD"]["exchange_is_open"] == 0
    assert "symbol" not in r100 and "display_name" not in r100
    none = public.request({"active_symbols": "brief", "contract_type": ["MULTUP"]})
    assert none["active_symbols"] == []


def test_contracts_for(public: OptionsClient) -> None:
    reply = public.request({"contracts_for": "R_10"})
    available = reply["contracts_for"]["available"]
    assert {a["contract_type"] for a in available} == {"CALL", "PUT"}
    assert all(a["underlying_symbol"] == "R_10" for a in available)
    assert reply["contracts_for"]["hit_count"] == len(available)
    bad = public.request({"contracts_for": "R_1000"})
    assert bad["error"]["code"] == "InvalidSymbol" and bad["msg_type"] == "contracts_for"


def test_ticks_stream_keeps_tick_symbol(public: OptionsClient) -> None:
    first = public.request({"ticks": "R_50", "subscribe": 1})
    messages = [first, *stream(public, first, 3)]
    for message in messages:
        assert message["tick"]["symbol"] == "R_50"  # not renamed in ticks
        assert message["req_id"] == first["req_id"]
    sub = first["subscription"]["id"]
    assert len(sub) == 36 and sub.count("-") == 4  # UUID-shaped, as in the new API's docs
    assert public.request({"forget": sub})["forget"] == 1
    assert public.request({"forget": sub})["forget"] == 0


def test_ticks_of_several_symbols_and_forget_all(public: OptionsClient) -> None:
    first = public.request({"ticks": ["R_10", "R_25"], "subscribe": 1})
    second = public.wait_for(lambda m: m.get("msg_type") == "tick" and m is not first)
    assert {first["tick"]["symbol"], second["tick"]["symbol"]} == {"R_10", "R_25"}
    forgotten = public.request({"forget_all": "ticks"})["forget_all"]
    assert sorted(forgotten) == sorted([first["subscription"]["id"], second["subscription"]["id"]])


def test_ticks_history_streams_ticks_and_candles(public: OptionsClient) -> None:
    first = public.request({"ticks_history": "R_25", "end": "latest", "count": 3, "subscribe": 1})
    assert first["msg_type"] == "history" and len(first["history"]["prices"]) == 3
    assert all(m["msg_type"] == "tick" for m in stream(public, first, 2))
    candles = public.request(
        {
            "ticks_history": "R_75",
            "end": "latest",
            "count": 3,
            "style": "candles",
            "granularity": 60,
            "subscribe": 1,
        }
    )
    assert candles["msg_type"] == "candles"
    assert all(m["msg_type"] == "ohlc" for m in stream(public, candles, 2))


def test_proposal_stream_with_underlying_symbol(public: OptionsClient) -> None:
    first = public.request({**PROPOSAL, "subscribe": 1})
    assert "display_value" not in first["proposal"]
    assert first["proposal"]["id"] == first["subscription"]["id"]
    later = stream(public, first, 2)
    assert all(m["msg_type"] == "proposal" for m in later)
    duplicate = public.request({**PROPOSAL, "subscribe": 1})
    assert duplicate["error"]["code"] == "AlreadySubscribed"
    assert public.request({"forget_all": "proposal"})["forget_all"] == [first["subscription"]["id"]]


def test_symbol_instead_of_underlying_symbol_is_input_validation_failed(
    public: OptionsClient,
) -> None:
    request = {k: v for k, v in PROPOSAL.items() if k != "underlying_symbol"}
    reply = public.request({**request, "symbol": "R_100", "req_id": 3})
    assert reply["error"]["code"] == "InputValidationFailed"
    assert "Properties not allowed: symbol" in reply["error"]["message"]
    assert reply["msg_type"] == "proposal" and reply["req_id"] == 3
    reply = public.request(request)
    documented = deriv_example("ws.error.proposal.InputValidationFailed.json")
    assert reply["error"]["code"] == documented["error"]["code"]
    assert reply["error"]["message"] == documented["error"]["message"]
    assert reply["msg_type"] == documented["msg_type"]


@pytest.mark.parametrize(
    "request_",
    [
        {"ticks": "R_50", "loginid": "CR1"},
        {"active_symbols": "brief", "product_type": "basic"},
        {"contracts_for": "R_50", "currency": "USD"},
        {"balance": 1, "account": "all"},
        {"ticks": "R_50", "subscribe": 0},
        {"ping": 2},
    ],
    ids=lambda r: "-".join(r),
)
def test_v3_fields_are_rejected(public: OptionsClient, request_: dict[str, Any]) -> None:
    reply = public.request(request_)
    assert reply["error"]["code"] == "InputValidationFailed", reply


@pytest.mark.parametrize(
    "request_",
    [
        {"authorize": "some-token"},
        {"website_status": 1},
        {"payout_currencies": 1},
        {"ticks_batch": ["R_50"]},
        {"get_settings": 1},
        {"nonsense": 1},
    ],
    ids=lambda r: next(iter(r)),
)
def test_v3_only_calls_are_unrecognised(
    options_server: LocalServer, public: OptionsClient, request_: dict[str, Any]
) -> None:
    for c in (public, demo_client(options_server)):
        reply = c.request(request_)
        assert reply["error"] == {"code": "UnrecognisedRequest", "message": "Unrecognised request."}
        assert reply["msg_type"] == "error"
        if c is not public:
            c.close()
    if "authorize" in request_:
        assert reply["echo_req"]["authorize"] == "<not shown>"  # a token is never echoed


@pytest.mark.parametrize("call", sorted(AUTH_CALLS))
def test_authenticated_calls_on_the_public_socket(public: OptionsClient, call: str) -> None:
    reply = public.request(AUTH_CALLS[call])
    assert reply["error"]["code"] == "AuthorizationRequired", reply
    assert reply["msg_type"] == call
    assert_options_valid(reply)


def test_one_account_per_socket_and_logout(options_server: LocalServer) -> None:
    c = demo_client(options_server)
    balance = c.request({"balance": 1, "subscribe": 1})
    assert balance["balance"]["loginid"] == derive_account_id(PAT)
    assert balance["balance"]["id"] == balance["subscription"]["id"]
    assert c.request({"logout": 1})["logout"] == 1
    after = c.request({"balance": 1})
    assert after["error"]["code"] == "AuthorizationRequired"
    assert c.request({"time": 1})["msg_type"] == "time"  # public calls still answer
    c.close()


def test_rate_limits_apply_to_the_new_api() -> None:
    with LocalServer(pats=[PAT], rate_limits={"time": 2}) as srv:
        c = OptionsClient(srv.options_url)
        assert c.request({"time": 1})["msg_type"] == "time"
        assert c.request({"time": 1})["msg_type"] == "time"
        assert c.request({"time": 1})["error"]["code"] == "RateLimit"
        c.close()


def test_the_validator_rejects_v3_shapes(options_server: LocalServer) -> None:
    """The check of these tests can fail: v3's replies are not the new API's."""
    v3 = Client(options_server.url)
    for request in ({"active_symbols": "brief"}, {**PROPOSAL_V3, "req_id": 9}):
        reply = v3.request(request)
        with pytest.raises(AssertionError, match="Additional properties"):
            assert_options_valid(reply)
    v3.close()


PROPOSAL_V3 = {**{k: v for k, v in PROPOSAL.items() if k != "underlying_symbol"}, "symbol": "R_100"}


def test_bad_json_on_the_new_api(public: OptionsClient) -> None:
    public.ws.send("{not json")
    reply = public.recv()
    assert reply["error"]["code"] == "InputValidationFailed"
    assert public.request({"ping": 1})["ping"] == "pong"


#: The calls the new API's sockets must answer (the task's list), with a request for each.
LONG = {**{k: PROPOSAL[k] for k in PARAMETERS}, "duration": 600, "duration_unit": "s"}
EVERY_CALL: list[dict[str, Any]] = [
    {"ping": 1},
    {"time": 1},
    {"active_symbols": "brief"},
    {"contracts_for": "R_50"},
    {"trading_times": "today"},
    {"ticks": "R_50", "subscribe": 1},
    {"ticks_history": "R_50", "end": "latest", "count": 3},
    {"proposal": 1, **LONG},
    {"buy": "1", "price": 10, "parameters": LONG},
    {"proposal_open_contract": 1, "subscribe": 1},
    {"portfolio": 1},
    {"balance": 1, "subscribe": 1},
    {"transaction": 1, "subscribe": 1},
    {"sell": 0, "price": 0},  # the contract bought above (its id is filled in)
    {"profit_table": 1},
    {"statement": 1},
    {"forget": ""},  # the ticks stream above (its id is filled in)
    {"forget_all": "proposal_open_contract"},
    {"logout": 1},
]
LISTED = {
    "ping", "time", "active_symbols", "contracts_for", "trading_times", "ticks",
    "ticks_history", "proposal", "buy", "sell", "proposal_open_contract", "portfolio",
    "profit_table", "statement", "balance", "transaction", "forget", "forget_all", "logout",
}  # fmt: skip


def test_every_listed_call_answers_valid_messages(options_server: LocalServer) -> None:
    c = demo_client(options_server)
    replies: dict[str, dict[str, Any]] = {}
    for request in EVERY_CALL:
        call = next(iter(request))
        if call == "sell":
            request = {**request, "sell": replies["buy"]["buy"]["contract_id"]}
        if call == "forget":
            request = {"forget": replies["ticks"]["subscription"]["id"]}
        reply = c.request(request)  # OptionsClient validates it, and every stream message
        assert "error" not in reply, reply
        replies[call] = reply
    assert set(replies) == LISTED
    assert replies["sell"]["sell"]["contract_id"] == replies["buy"]["buy"]["contract_id"]
    assert replies["forget"]["forget"] == 1
    assert replies["profit_table"]["profit_table"]["count"] == 1
    assert replies["logout"]["logout"] == 1
    c.close()
