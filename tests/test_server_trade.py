"""A whole trade on LocalServer, with a plain websocket-client client."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server_helpers import TOKEN, Client, assert_valid, client, server

__all__ = ["client", "server"]  # fixtures

pytestmark = pytest.mark.timeout(30)


def _sub_id(message: dict[str, Any]) -> str | None:
    sub = message.get("subscription")
    return sub["id"] if sub else None


@pytest.mark.parametrize(("duration", "unit"), [(3, "t"), (1, "s")], ids=["3-ticks", "1-second"])
def test_whole_trade(client: Client, duration: int, unit: str) -> None:
    auth = client.request({"authorize": TOKEN})
    assert_valid("authorize", auth)
    start = auth["authorize"]["balance"]
    balance = client.request({"balance": 1, "subscribe": 1})
    balance_sub = balance["subscription"]["id"]
    assert balance["balance"]["balance"] == start

    proposal = client.request(
        {
            "proposal": 1,
            "amount": 20,
            "basis": "payout",
            "contract_type": "CALL",
            "currency": "USD",
            "duration": duration,
            "duration_unit": unit,
            "symbol": "R_100",
            "subscribe": 1,
        }
    )
    assert_valid("proposal", proposal)
    ask = proposal["proposal"]["ask_price"]
    assert proposal["proposal"]["payout"] == 20

    bought = client.request({"buy": proposal["proposal"]["id"], "price": ask})
    assert_valid("buy", bought)
    contract_id = bought["buy"]["contract_id"]
    assert bought["buy"]["buy_price"] == ask
    debit = client.wait_for(lambda m: _sub_id(m) == balance_sub)
    assert debit["balance"]["balance"] == round(start - ask, 2)

    poc = client.request({"proposal_open_contract": 1, "contract_id": contract_id, "subscribe": 1})
    updates = [poc]
    while "subscription" in updates[-1]:
        updates.append(client.wait_for(lambda m: m.get("msg_type") == "proposal_open_contract", 10))
    for update in updates:
        assert_valid("proposal_open_contract", update)
        assert update["proposal_open_contract"]["contract_id"] == contract_id
    final = updates[-1]["proposal_open_contract"]
    assert final["is_sold"] == 1 and final["is_expired"] == 1
    assert final["status"] in ("won", "lost")
    payout = 20 if final["status"] == "won" else 0
    assert final["sell_price"] == payout
    assert final["profit"] == round(payout - ask, 2)
    if unit == "t":
        assert final["tick_passed"] == duration

    settled = client.wait_for(lambda m: _sub_id(m) == balance_sub)
    assert_valid("balance", settled)
    assert settled["balance"]["balance"] == round(start - ask + payout, 2)
    # The bought proposal's stream ended; the contract left the portfolio.
    assert client.request({"portfolio": 1})["portfolio"]["contracts"] == []
    assert client.request({"forget": proposal["subscription"]["id"]})["forget"] == 0
