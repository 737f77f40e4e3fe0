"""A whole demo trade on the new API's socket (REST accounts and OTP, proposal, buy,
proposal_open_contract until sold, balance and transaction streams, portfolio, profit_table,
statement), every message validated against the official schemas by OptionsClient."""

from __future__ import annotations

from typing import Any

import pytest

from deriv_sdk.testing import LocalServer
from deriv_sdk.testing.pats import derive_account_id
from tests.server_helpers import PAT, OptionsClient, Rest, demo_client, options_server

__all__ = ["options_server"]  # fixtures

pytestmark = pytest.mark.timeout(30)

PARAMETERS = {
    "amount": 10,
    "basis": "stake",
    "contract_type": "CALL",
    "currency": "USD",
    "duration": 3,
    "duration_unit": "t",
    "underlying_symbol": "R_10",
}
MONEY = ("bid_price", "buy_price", "payout", "profit")


def of(sub: dict[str, Any]) -> Any:
    sub_id = sub["subscription"]["id"]
    return lambda m: m.get("subscription", {}).get("id") == sub_id


def test_whole_demo_trade(options_server: LocalServer) -> None:
    account_id = derive_account_id(PAT)
    rest = Rest(options_server)
    account = next(a for a in rest.accounts() if a["account_type"] == "demo")
    assert account["account_id"] == account_id
    c = OptionsClient(rest.otp_url(account_id))
    rest.close()

    balance = c.request({"balance": 1, "subscribe": 1})
    assert balance["balance"]["balance"] == 10000 and balance["balance"]["loginid"] == account_id
    transactions = c.request({"transaction": 1, "subscribe": 1})
    proposal = c.request({"proposal": 1, **PARAMETERS})
    price = proposal["proposal"]["ask_price"]
    bought = c.request({"buy": proposal["proposal"]["id"], "price": price, "subscribe": 1})
    receipt = bought["buy"]
    assert receipt["buy_price"] == price
    assert receipt["balance_after"] == round(10000 - price, 2)

    tx = c.wait_for(of(transactions))["transaction"]
    assert tx["action"] == "buy" and tx["amount"] == -price
    assert tx["underlying_symbol"] == "R_10" and "symbol" not in tx
    assert tx["contract_id"] == receipt["contract_id"]
    assert c.wait_for(of(balance))["balance"]["balance"] == receipt["balance_after"]

    updates = []
    while True:  # the contract's stream, until it is sold (its last message has no id)
        message = c.wait_for(
            lambda m: (
                m.get("msg_type") == "proposal_open_contract"
                and m["proposal_open_contract"].get("contract_id") == receipt["contract_id"]
            )
        )
        poc = message["proposal_open_contract"]
        updates.append(poc)
        assert all(isinstance(poc[k], str) for k in MONEY if k in poc)  # money as strings
        assert poc["underlying_symbol"] == "R_10" and "underlying" not in poc
        if poc["is_sold"]:
            assert "subscription" not in message
            break
    final = updates[-1]
    assert final["status"] in ("won", "lost") and isinstance(final["sell_price"], str)
    assert isinstance(final["exit_spot"], str) and isinstance(final["entry_spot"], str)
    assert final["tick_passed"] == 3 and len(updates) >= 3

    sold = c.wait_for(lambda m: of(transactions)(m) and m["transaction"]["action"] == "sell")
    payout = float(final["sell_price"])
    assert sold["transaction"]["amount"] == payout
    end_balance = round(10000 - price + payout, 2)
    assert c.wait_for(
        lambda m: of(balance)(m) and m["balance"]["balance"] == end_balance
    )  # the balance stream saw the settlement

    again = c.request({"proposal_open_contract": 1, "contract_id": receipt["contract_id"]})
    assert again["proposal_open_contract"]["is_sold"] == 1
    assert c.request({"portfolio": 1})["portfolio"]["contracts"] == []
    table = c.request({"profit_table": 1, "description": 1})["profit_table"]
    assert table["count"] == 1
    row = table["transactions"][0]
    assert row["contract_id"] == receipt["contract_id"] and row["sell_price"] == payout
    assert row["underlying_symbol"] == "R_10" and "longcode" in row
    statement = c.request({"statement": 1})["statement"]
    assert [t["action_type"] for t in statement["transactions"]] == ["sell", "buy"]
    assert statement["transactions"][0]["balance_after"] == end_balance
    assert c.request({"balance": 1})["balance"]["balance"] == end_balance
    assert c.seen["proposal_open_contract"] >= 4 and c.seen["transaction"] >= 3
    c.close()


def test_buy_with_parameters_then_sell_early(options_server: LocalServer) -> None:
    c = demo_client(options_server)
    watch = c.request({"proposal_open_contract": 1, "subscribe": 1})  # every open contract
    assert watch["proposal_open_contract"] == {}
    params = {**PARAMETERS, "duration": 300, "duration_unit": "s", "contract_type": "PUT"}
    bought = c.request({"buy": "1", "price": 10, "parameters": params})
    contract_id = bought["buy"]["contract_id"]
    open_ = c.request({"portfolio": 1})["portfolio"]["contracts"]
    assert [p["contract_id"] for p in open_] == [contract_id]
    assert open_[0]["underlying_symbol"] == "R_10" and "app_id" not in open_[0]
    c.wait_for(lambda m: of(watch)(m) and m["proposal_open_contract"]["contract_id"] == contract_id)
    sold = c.request({"sell": contract_id, "price": 0})["sell"]
    assert sold["contract_id"] == contract_id and sold["sold_for"] >= 0
    last = c.wait_for(lambda m: of(watch)(m) and m["proposal_open_contract"].get("is_sold") == 1)
    assert last["proposal_open_contract"]["status"] == "sold"
    again = c.request({"sell": contract_id, "price": 0})
    assert again["error"]["code"] == "InvalidSellContractProposal"
    statement = c.request({"statement": 1, "action_type": "sell", "description": 1})
    rows = statement["statement"]["transactions"]
    assert len(rows) == 1 and rows[0]["reference_id"] == bought["buy"]["transaction_id"]
    assert "longcode" in rows[0]
    c.close()


def test_trade_errors_in_the_new_api(options_server: LocalServer) -> None:
    with options_server.lock:
        options_server.pats[PAT][0].balance = 1.0
    c = demo_client(options_server)
    proposal = c.request({"proposal": 1, **PARAMETERS})
    low = c.request({"buy": proposal["proposal"]["id"], "price": 1})
    assert low["error"]["code"] == "PriceMoved"
    poor = c.request({"buy": proposal["proposal"]["id"], "price": 100})
    assert poor["error"]["code"] == "InsufficientBalance"
    unknown = c.request({"buy": "0123456789abcdef0123456789abcdef", "price": 10})
    assert unknown["error"]["code"] == "InvalidContractProposal"
    v3_params = {**PARAMETERS, "symbol": "R_10"}
    del v3_params["underlying_symbol"]
    bad = c.request({"buy": "1", "price": 10, "parameters": v3_params})
    assert bad["error"]["code"] == "InputValidationFailed"
    assert (
        c.request({"proposal_open_contract": 1, "contract_id": 1})["proposal_open_contract"] == {}
    )
    c.close()


def test_reset_demo_balance_reaches_the_streams(options_server: LocalServer) -> None:
    c = demo_client(options_server)
    balance = c.request({"balance": 1, "subscribe": 1})
    transactions = c.request({"transaction": 1, "subscribe": 1})
    c.request(
        {
            "buy": "1",
            "price": 10,
            "parameters": {**PARAMETERS, "duration": 600, "duration_unit": "s"},
        }
    )
    spent = c.wait_for(of(balance))["balance"]["balance"]
    assert spent < 10000
    rest = Rest(options_server)
    status, _, _ = rest.call(
        "POST", f"/trading/v1/options/accounts/{derive_account_id(PAT)}/reset-demo-balance"
    )
    rest.close()
    assert status == 200
    assert c.wait_for(lambda m: of(balance)(m) and m["balance"]["balance"] == 10000)
    deposit = c.wait_for(lambda m: of(transactions)(m) and m["transaction"]["action"] == "deposit")
    assert deposit["transaction"]["amount"] == round(10000 - spent, 2)
    rows = c.request({"statement": 1})["statement"]["transactions"]
    assert rows[0]["action_type"] == "deposit"
    c.close()
