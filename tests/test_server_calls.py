"""Every call of LocalServer, sent as Deriv's official example.json request, and every message
that comes back validated against that call's official receive.json.

Where an example cannot succeed as is (it names a proposal or contract that exists only on
Deriv's servers), the example is sent as is (its error reply is validated too) and then again
with the id corrected to one this server issued. None of the examples of the implemented
calls fails its own send.json.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from deriv_sdk.testing import LocalServer
from tests.server_helpers import (
    EXAMPLE_TOKEN,
    TOKEN,
    Client,
    assert_valid,
    client,
    envelope_validator,
    example,
    server,
)

__all__ = ["client", "server"]  # fixtures

pytestmark = pytest.mark.timeout(30)


def _stream(c: Client, first: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The next ``count`` messages of the stream that ``first`` started."""
    sub = first["subscription"]["id"]
    return [c.wait_for(lambda m: m.get("subscription", {}).get("id") == sub) for _ in range(count)]


def _proposal(c: Client, **extra: Any) -> dict[str, Any]:
    request = {
        "proposal": 1,
        "amount": 10,
        "basis": "stake",
        "contract_type": "CALL",
        "currency": "USD",
        "duration": 2,
        "duration_unit": "t",
        "symbol": "R_100",
        **extra,
    }
    return c.request(request)


@pytest.mark.parametrize("call", ["ping", "time", "website_status", "active_symbols", "logout"])
def test_simple_example_requests(client: Client, call: str) -> None:
    reply = client.request(example(call))
    assert reply["msg_type"] == call
    assert "error" not in reply
    assert_valid(call, reply)


def test_ping_reply_is_deriv_shaped(client: Client) -> None:
    reply = client.request({"ping": 1, "req_id": 7, "passthrough": {"a": [1]}})
    assert reply == {
        "echo_req": {"ping": 1, "req_id": 7, "passthrough": {"a": [1]}},
        "msg_type": "ping",
        "ping": "pong",
        "req_id": 7,
        "passthrough": {"a": [1]},
    }


def test_active_symbols_full_and_closed_market(client: Client) -> None:
    reply = client.request({"active_symbols": "full"})
    assert_valid("active_symbols", reply)
    symbols = {s["symbol"]: s for s in reply["active_symbols"]}
    assert {"R_10", "R_25", "R_50", "R_75", "R_100"} <= set(symbols)
    assert all(symbols[s]["exchange_is_open"] == 1 for s in ("R_10", "R_50", "R_100"))
    assert symbols["frxEURUSD"]["exchange_is_open"] == 0


def test_website_status_has_api_call_limits(client: Client) -> None:
    reply = client.request({"website_status": 1, "subscribe": 1})
    assert_valid("website_status", reply)
    assert "max_requestes_general" in reply["website_status"]["api_call_limits"]
    assert len(reply["subscription"]["id"]) >= 32


def test_ticks_example_streams(client: Client) -> None:
    first = client.request(example("ticks"))
    assert first["msg_type"] == "tick"
    messages = [first, *_stream(client, first, 3)]
    epochs = []
    for message in messages:
        assert_valid("ticks", message)
        assert message["req_id"] == first["req_id"]
        assert message["tick"]["symbol"] == "R_50"
        assert message["tick"]["id"] == first["subscription"]["id"]
        epochs.append(message["tick"]["epoch"])
    assert epochs == sorted(epochs)


def test_ticks_history_example(client: Client) -> None:
    reply = client.request(example("ticks_history"))
    assert_valid("ticks_history", reply)
    assert reply["msg_type"] == "history"
    assert len(reply["history"]["prices"]) == 10 == len(reply["history"]["times"])
    assert reply["history"]["times"] == sorted(reply["history"]["times"])
    assert "subscription" not in reply


def test_ticks_history_tick_stream(client: Client) -> None:
    first = client.request({**example("ticks_history"), "subscribe": 1})
    assert_valid("ticks_history", first)
    for message in _stream(client, first, 3):
        # receive.json does not define the tick payload: check the envelope and the fields.
        assert not list(envelope_validator().iter_errors(message))
        assert message["msg_type"] == "tick"
        assert set(message["tick"]) == {"ask", "bid", "epoch", "id", "pip_size", "quote", "symbol"}
        assert message["tick"]["id"] == first["subscription"]["id"]
        assert message["req_id"] == first["req_id"]


def test_ticks_history_candles_and_ohlc_stream(client: Client) -> None:
    request = {
        "ticks_history": "R_50",
        "adjust_start_time": 1,
        "count": 3,
        "end": "latest",
        "granularity": 60,
        "start": 1,
        "style": "candles",
        "subscribe": 1,
    }
    first = client.request(request)
    assert_valid("ticks_history", first)
    assert first["msg_type"] == "candles"
    assert len(first["candles"]) == 3
    for message in _stream(client, first, 3):
        assert not list(envelope_validator().iter_errors(message))
        assert message["msg_type"] == "ohlc"
        ohlc = message["ohlc"]
        assert ohlc["granularity"] == 60 and ohlc["symbol"] == "R_50"
        assert ohlc["id"] == first["subscription"]["id"]
        assert ohlc["open_time"] % 60 == 0
        # Deriv sends ohlc prices as strings (candles as numbers).
        values = [float(ohlc[k]) for k in ("open", "high", "low", "close")]
        assert all(isinstance(ohlc[k], str) for k in ("open", "high", "low", "close"))
        assert values[2] <= min(values) and values[1] == max(values)


def test_forget_example_and_forget(client: Client) -> None:
    unknown = client.request(example("forget"))
    assert_valid("forget", unknown)
    assert unknown["forget"] == 0
    first = client.request({"ticks": "R_10", "subscribe": 1})
    reply = client.request({"forget": first["subscription"]["id"]})
    assert_valid("forget", reply)
    assert reply["forget"] == 1


def test_forget_all_example(client: Client) -> None:
    a = client.request({"ticks": "R_10", "subscribe": 1})
    b = client.request({"ticks_history": "R_25", "end": "latest", "count": 1, "subscribe": 1})
    candles = client.request(
        {"ticks_history": "R_25", "end": "latest", "style": "candles", "subscribe": 1}
    )
    reply = client.request(example("forget_all"))
    assert_valid("forget_all", reply)
    assert sorted(reply["forget_all"]) == sorted([a["subscription"]["id"], b["subscription"]["id"]])
    reply = client.request({"forget_all": ["candles", "ticks"]})
    assert reply["forget_all"] == [candles["subscription"]["id"]]


def test_authorize_example_masks_the_token(client: Client) -> None:
    reply = client.request(example("authorize"))
    assert_valid("authorize", reply)
    assert reply["echo_req"]["authorize"] == "<not shown>"
    assert EXAMPLE_TOKEN not in json.dumps(reply)
    assert reply["authorize"]["balance"] == 10000
    assert reply["authorize"]["currency"] == "USD"
    assert reply["authorize"]["loginid"].startswith("VRTC")


def test_authorize_with_account_fields() -> None:
    tokens = {"tok-a": {"loginid": "CR1234", "currency": "EUR", "balance": 50.5}}
    with LocalServer(tokens=tokens) as srv:
        c = Client(srv.url)
        reply = c.request({"authorize": "tok-a"})
        assert_valid("authorize", reply)
        assert reply["authorize"]["loginid"] == "CR1234"
        assert reply["authorize"]["is_virtual"] == 0
        balance = c.request({"balance": 1})
        assert balance["balance"] == {"balance": 50.5, "currency": "EUR", "loginid": "CR1234"}
        c.close()


def test_balance_example_streams(client: Client) -> None:
    client.request({"authorize": TOKEN})
    first = client.request(example("balance"))
    assert_valid("balance", first)
    assert first["balance"]["balance"] == 10000
    proposal = _proposal(client)
    client.request({"buy": proposal["proposal"]["id"], "price": 10})
    (update,) = _stream(client, first, 1)
    assert_valid("balance", update)
    assert update["balance"]["balance"] == 9990
    everything = client.request({"balance": 1, "account": "all"})
    assert_valid("balance", everything)


def test_proposal_example_and_stream(client: Client) -> None:
    reply = client.request(example("proposal"))
    assert_valid("proposal", reply)
    assert reply["proposal"]["payout"] == 100
    assert 0 < reply["proposal"]["ask_price"] < 100
    first = _proposal(client, subscribe=1)
    assert first["proposal"]["id"] == first["subscription"]["id"]
    for message in _stream(client, first, 2):
        assert_valid("proposal", message)


def test_buy_example_then_corrected(client: Client) -> None:
    client.request({"authorize": TOKEN})
    unknown = client.request(example("buy"))
    assert_valid("buy", unknown)
    assert unknown["error"]["code"] == "InvalidContractProposal"
    # Corrected example: the proposal id of Deriv's example exists only on Deriv's servers.
    proposal = client.request(example("proposal"))
    corrected = {**example("buy"), "buy": proposal["proposal"]["id"]}
    reply = client.request(corrected)
    assert_valid("buy", reply)
    assert reply["buy"]["buy_price"] == proposal["proposal"]["ask_price"]
    assert reply["buy"]["balance_after"] == round(10000 - reply["buy"]["buy_price"], 2)


def test_buy_with_parameters_and_subscribe(client: Client) -> None:
    client.request({"authorize": TOKEN})
    parameters = {
        "amount": 5,
        "basis": "stake",
        "contract_type": "PUT",
        "currency": "USD",
        "duration": 2,
        "duration_unit": "t",
        "symbol": "R_50",
    }
    reply = client.request({"buy": "1", "price": 5, "parameters": parameters, "subscribe": 1})
    assert_valid("buy", reply)
    last = client.wait_for(
        lambda m: (
            m.get("msg_type") == "proposal_open_contract"
            and m["proposal_open_contract"]["is_sold"] == 1
        )
    )
    assert_valid("proposal_open_contract", last)
    assert "subscription" not in last


def test_proposal_open_contract_example_and_corrected(client: Client) -> None:
    client.request({"authorize": TOKEN})
    unknown = client.request(example("proposal_open_contract"))
    assert_valid("proposal_open_contract", unknown)
    assert unknown["proposal_open_contract"] == {}
    assert "subscription" not in unknown
    bought = client.request({"buy": _proposal(client)["proposal"]["id"], "price": 10})
    corrected = {**example("proposal_open_contract"), "contract_id": bought["buy"]["contract_id"]}
    first = client.request(corrected)
    messages = [first]
    while "subscription" in messages[-1]:
        messages.append(client.wait_for(lambda m: m.get("msg_type") == "proposal_open_contract"))
    for message in messages:
        assert_valid("proposal_open_contract", message)
        assert message["req_id"] == first["req_id"]
    assert messages[-1]["proposal_open_contract"]["is_sold"] == 1
    assert all(m["proposal_open_contract"]["is_sold"] == 0 for m in messages[:-1])


def test_sell_example_then_corrected(client: Client) -> None:
    client.request({"authorize": TOKEN})
    unknown = client.request(example("sell"))
    assert_valid("sell", unknown)
    assert unknown["error"]["code"] == "InvalidSellContractProposal"
    bought = client.request(
        {"buy": _proposal(client, duration=60, duration_unit="s")["proposal"]["id"], "price": 10}
    )
    contract_id = bought["buy"]["contract_id"]
    portfolio = client.request(example("portfolio"))
    assert_valid("portfolio", portfolio)
    assert [c["contract_id"] for c in portfolio["portfolio"]["contracts"]] == [contract_id]
    # Corrected example: a contract of this account, and price 0 (sell at market).
    reply = client.request({**example("sell"), "sell": contract_id, "price": 0})
    assert_valid("sell", reply)
    assert reply["sell"]["contract_id"] == contract_id
    portfolio = client.request(example("portfolio"))
    assert portfolio["portfolio"]["contracts"] == []


def test_transaction_example_streams(client: Client) -> None:
    client.request({"authorize": TOKEN})
    first = client.request(example("transaction"))
    assert_valid("transaction", first)
    bought = client.request({"buy": _proposal(client)["proposal"]["id"], "price": 10})
    buy_tx, sell_tx = _stream(client, first, 2)
    for message in (buy_tx, sell_tx):
        assert_valid("transaction", message)
        assert message["transaction"]["contract_id"] == bought["buy"]["contract_id"]
    assert buy_tx["transaction"]["action"] == "buy"
    assert buy_tx["transaction"]["amount"] == -10
    assert sell_tx["transaction"]["action"] == "sell"


def test_logout_ends_the_session(client: Client) -> None:
    client.request({"authorize": TOKEN})
    assert "error" not in client.request({"balance": 1})
    reply = client.request(example("logout"))
    assert_valid("logout", reply)
    assert client.request({"balance": 1})["error"]["code"] == "AuthorizationRequired"


def test_time_is_now(client: Client) -> None:
    reply = client.request({"time": 1})
    assert abs(reply["time"] - time.time()) < 5


def test_requests_are_recorded_in_order(server: LocalServer, client: Client) -> None:
    other = Client(server.url)
    client.request({"ping": 1, "req_id": 1})
    other.request({"time": 1, "req_id": 2})
    client.request({"authorize": TOKEN, "req_id": 3})
    other.close()
    assert [r["req_id"] for r in server.requests] == [1, 2, 3]
    assert server.requests[2]["authorize"] == TOKEN  # as received, not masked
