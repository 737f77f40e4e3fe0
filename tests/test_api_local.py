"""Typed calls against LocalServer: for every call it implements, the typed method returns
exactly what arrived (the frame's JSON), and what arrived fits the generated response type
(no unknown key, no missing required key, every value of its declared type). Streams too:
each message a listener gets is the frame, and fits the type the listener is declared with.

The new API's half runs once LocalServer serves it (``options_url``); until then it is
skipped with that reason.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from deriv_sdk import APIError, Connection, MessageEvent, RestClient, Subscription
from deriv_sdk.api import LegacyAPI, OptionsAPI, options_types, v3_types
from deriv_sdk.testing import LocalServer
from deriv_sdk.testing.validation import IMPLEMENTED, LEGACY, OPTIONS
from tests.api_support import conformance, method_arguments, smallest_request, v3_calls

V3 = v3_calls()

pytestmark = pytest.mark.timeout(60)


class Arrivals:
    """Every frame the connection received, decoded from its raw text, by ``req_id``."""

    def __init__(self, conn: Connection) -> None:
        self.frames: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        conn.on("message", self._on_message)

    def _on_message(self, event: MessageEvent) -> None:
        with self.changed:
            self.frames.append(json.loads(event.raw))
            self.changed.notify_all()

    def of(self, req_id: int, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The first ``count`` frames carrying ``req_id`` (waits for them)."""

        def found() -> list[dict[str, Any]]:
            return [f for f in self.frames if f.get("req_id") == req_id]

        with self.changed:
            assert self.changed.wait_for(lambda: len(found()) >= count, timeout), found()
            return found()[:count]


def check_forget_all(arrivals: Arrivals, response: dict[str, Any]) -> None:
    """``forget_all`` returns the response as it arrived (as every typed call)."""
    with arrivals.changed:
        assert arrivals.changed.wait_for(
            lambda: any(f.get("msg_type") == "forget_all" for f in arrivals.frames), 10
        )
        (frame,) = [f for f in arrivals.frames if f.get("msg_type") == "forget_all"]
    assert response == frame


def check_reply(arrivals: Arrivals, result: Any, response_type: Any) -> dict[str, Any]:
    """``result`` is the frame that arrived with its ``req_id``, and fits ``response_type``."""
    assert isinstance(result, dict) and "error" not in result, result
    (frame,) = arrivals.of(result["req_id"])
    assert result == frame
    assert conformance(frame, response_type) == []
    return frame


class Stream:
    """A listener that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.changed = threading.Condition()

    def __call__(self, message: dict[str, Any]) -> None:
        with self.changed:
            self.messages.append(message)
            self.changed.notify_all()

    def wait(self, count: int, until: Callable[[dict[str, Any]], bool] | None = None) -> None:
        def done() -> bool:
            if until is not None:
                return any(until(m) for m in self.messages)
            return len(self.messages) >= count

        with self.changed:
            assert self.changed.wait_for(done, 20), self.messages


def check_stream(
    arrivals: Arrivals, sub: Subscription, stream: Stream, message_type: Any, count: int = 2
) -> None:
    """The listener got the frames of ``sub``'s stream, unchanged, each of ``message_type``."""
    assert isinstance(sub, Subscription)
    stream.wait(count)
    got = list(stream.messages)
    req_id = got[0]["req_id"]
    assert got[:count] == arrivals.of(req_id, count)
    for message in got:
        assert conformance(message, message_type) == [], message
    sub.forget()


# -- v3 ------------------------------------------------------------------------------------


@pytest.fixture
def legacy(deriv_server: LocalServer) -> Iterator[tuple[LegacyAPI, Arrivals]]:
    with Connection(url=deriv_server.url, keepalive_interval=None) as conn:
        yield LegacyAPI(conn), Arrivals(conn)


def test_every_call_local_server_implements_is_covered() -> None:
    covered = {
        "active_symbols", "authorize", "balance", "buy", "forget", "forget_all", "logout",
        "ping", "portfolio", "proposal", "proposal_open_contract", "sell", "ticks",
        "ticks_history", "time", "transaction", "website_status",
    }  # fmt: skip
    assert covered == set(IMPLEMENTED[LEGACY])


def test_every_new_api_call_local_server_implements_is_covered() -> None:
    # The calls test_options_public_calls and test_options_account_calls make.
    covered = {
        "ping", "time", "active_symbols", "contracts_for", "contracts_list", "trading_times",
        "ticks_history",
        "proposal", "ticks", "forget", "forget_all", "balance", "transaction", "buy",
        "portfolio", "proposal_open_contract", "sell", "profit_table", "statement", "logout",
    }  # fmt: skip
    assert covered == set(IMPLEMENTED[OPTIONS])


def test_v3_market_calls(legacy: tuple[LegacyAPI, Arrivals]) -> None:
    api, got = legacy
    t = v3_types
    check_reply(got, api.ping(), t.PingResponse)
    check_reply(got, api.time(), t.TimeResponse)
    check_reply(got, api.website_status(), t.WebsiteStatusResponse)
    check_reply(got, api.active_symbols("brief"), t.ActiveSymbolsResponse)
    history = check_reply(
        got, api.ticks_history("R_100", end="latest", count=5), t.TicksHistoryResponse
    )
    assert len(history["history"]["prices"]) == 5
    candles = api.ticks_history("R_100", end="latest", count=3, style="candles", granularity=60)
    check_reply(got, candles, t.TicksHistoryResponse)
    check_reply(got, api.proposal(**CALL_5_TICKS), t.ProposalResponse)
    check_reply(got, api.forget("f" * 32), t.ForgetResponse)


def test_v3_streams(legacy: tuple[LegacyAPI, Arrivals]) -> None:
    api, got = legacy
    t = v3_types
    ticks = Stream()
    check_stream(got, api.ticks("R_100", listener=ticks), ticks, t.TicksResponse)
    candles = Stream()
    sub = api.ticks_history(
        "R_100", end="latest", count=2, style="candles", granularity=60, listener=candles
    )
    check_stream(got, sub, candles, t.TicksHistoryResponse, count=3)
    assert candles.messages[0]["msg_type"] == "candles" and "ohlc" in candles.messages[2]
    history = Stream()
    sub = api.ticks_history("R_100", end="latest", count=2, listener=history)
    check_stream(got, sub, history, t.TicksHistoryResponse, count=3)
    assert "tick" in history.messages[2]
    proposals = Stream()
    check_stream(
        got, api.proposal(**CALL_5_TICKS, listener=proposals), proposals, t.ProposalResponse
    )


CALL_5_TICKS: dict[str, Any] = {
    "contract_type": "CALL", "currency": "USD", "symbol": "R_100", "amount": 10,
    "basis": "stake", "duration": 5, "duration_unit": "t",
}  # fmt: skip


def test_v3_account_calls(legacy: tuple[LegacyAPI, Arrivals]) -> None:
    api, got = legacy
    t = v3_types
    check_reply(got, api.authorize("test-token"), t.AuthorizeResponse)
    check_reply(got, api.balance(), t.BalanceResponse)
    transactions = Stream()
    transaction_sub = api.transaction(listener=transactions)
    proposal = check_reply(got, api.proposal(**CALL_5_TICKS), t.ProposalResponse)["proposal"]
    bought = check_reply(got, api.buy(proposal["id"], price=10), t.BuyResponse)["buy"]
    check_reply(got, api.portfolio(), t.PortfolioResponse)
    contract = api.proposal_open_contract(contract_id=bought["contract_id"])
    check_reply(got, contract, t.ProposalOpenContractResponse)
    check_reply(got, api.sell(bought["contract_id"], price=0), t.SellResponse)
    check_stream(got, transaction_sub, transactions, t.TransactionResponse, count=3)
    # A bought contract followed to its end: the stream of a buy is proposal_open_contract's.
    proposal = api.proposal(**CALL_5_TICKS)["proposal"]
    updates = Stream()
    sub = api.buy(proposal["id"], price=10, listener=updates)
    updates.wait(0, until=lambda m: bool(m.get("proposal_open_contract", {}).get("is_sold")))
    assert updates.messages[0]["msg_type"] == "buy"
    check_stream(got, sub, updates, t.BuyResponse | t.ProposalOpenContractResponse)
    balances = Stream()
    check_stream(got, api.balance(listener=balances), balances, t.BalanceResponse, count=1)
    ticks = Stream()
    tick_sub = api.ticks("R_100", listener=ticks)
    ticks.wait(1)
    tick_id = tick_sub.id
    forgotten = api.forget_all("ticks", passthrough={"k": 1})
    check_forget_all(got, forgotten)
    assert forgotten["forget_all"] == [tick_id] and not tick_sub.active  # it ended locally too
    assert forgotten["passthrough"] == {"k": 1}
    check_reply(got, api.logout(), t.LogoutResponse)


def test_conformance_reports_what_does_not_fit() -> None:
    """The check above can fail: unknown keys, missing required ones, wrong types, Literals."""
    tick = {"epoch": 1, "pip_size": 2, "quote": "1.5", "symbol": "R_100", "volume": 3}
    message = {"msg_type": "ticks", "tick": tick}
    assert set(conformance(message, v3_types.TicksResponse)) == {
        "$: required key 'echo_req' missing (TicksResponse)",
        "$.msg_type: 'ticks' not in typing.Literal['tick']",
        "$.tick.quote: '1.5' is not float",
        "$.tick: key 'volume' not in TicksResponseTick",
    }


@pytest.mark.parametrize("call", sorted(IMPLEMENTED[LEGACY]))
def test_v3_smallest_call_passes_local_servers_validation(
    call: str, legacy: tuple[LegacyAPI, Arrivals]
) -> None:
    """The smallest valid call of tests/test_api_calls.py, made on LocalServer (which checks
    every request against send.json): a reply that arrived as returned and fits its type, or a
    refusal for what the values mean (an unknown proposal id), never for their shape."""
    api, got = legacy
    send, _, example = V3[call]
    if send.get("auth_required"):
        api.authorize("test-token")
    request = smallest_request(call, send, example)
    method = getattr(api, call)
    args, kwargs = method_arguments(call, method, request)
    stream = Stream()
    if "subscribe" in send.get("required", []):
        kwargs["listener"] = stream
    try:
        result = method(*args, **kwargs)
    except APIError as exc:
        assert exc.code != "InputValidationFailed", exc
        (frame,) = got.of(exc.req_id)  # type: ignore[arg-type]
        assert frame["error"]["code"] == exc.code
        return
    response_type = getattr(v3_types, camel(call) + "Response")
    if isinstance(result, Subscription):
        check_stream(got, result, stream, response_type, count=1)
    elif call == "forget_all":
        check_forget_all(got, result)
    else:
        check_reply(got, result, response_type)


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


# -- the new API ------------------------------------------------------------------------------

PROPOSAL: dict[str, Any] = {
    "contract_type": "CALL", "currency": "USD", "underlying_symbol": "R_100", "amount": 10,
    "basis": "stake", "duration": 5, "duration_unit": "t",
}  # fmt: skip


def test_options_public_calls(deriv_server: Any) -> None:
    o = options_types
    with Connection.options(url=deriv_server.options_url) as conn:
        api, got = OptionsAPI(conn), Arrivals(conn)
        check_reply(got, api.ping(), o.PingResponse)
        check_reply(got, api.time(), o.TimeResponse)
        check_reply(got, api.active_symbols("brief"), o.ActiveSymbolsResponse)
        check_reply(got, api.contracts_for("R_100"), o.ContractsForResponse)
        check_reply(got, api.contracts_list(), o.ContractsListResponse)
        check_reply(got, api.trading_times("today"), o.TradingTimesResponse)
        check_reply(got, api.ticks_history("R_100", end="latest", count=5), o.TicksHistoryResponse)
        check_reply(got, api.proposal(**PROPOSAL), o.ProposalResponse)
        ticks = Stream()
        check_stream(got, api.ticks("R_100", listener=ticks), ticks, o.TicksResponse)
        candles = Stream()
        sub = api.ticks_history(
            "R_100", end="latest", count=2, style="candles", granularity=60, listener=candles
        )
        check_stream(got, sub, candles, o.TicksHistoryResponse, count=3)
        check_reply(got, api.forget("f" * 32), o.ForgetResponse)
        check_forget_all(got, api.forget_all("ticks"))


def test_options_account_calls(deriv_server: Any) -> None:
    o = options_types
    rest = RestClient("test-app", "test-pat", base_url=deriv_server.rest_url)
    account = next(a for a in rest.accounts() if a["account_type"] == "demo")
    with Connection.options(account["account_id"], rest=rest) as conn:
        api, got = OptionsAPI(conn), Arrivals(conn)
        check_reply(got, api.balance(), o.BalanceResponse)
        transactions = Stream()
        transaction_sub = api.transaction(listener=transactions)
        proposal = check_reply(got, api.proposal(**PROPOSAL), o.ProposalResponse)["proposal"]
        bought = check_reply(got, api.buy(proposal["id"], price=10), o.BuyResponse)["buy"]
        check_reply(got, api.portfolio(), o.PortfolioResponse)
        contract = api.proposal_open_contract(contract_id=bought["contract_id"])
        check_reply(got, contract, o.ProposalOpenContractResponse)
        check_reply(got, api.sell(bought["contract_id"], price=0), o.SellResponse)
        check_stream(got, transaction_sub, transactions, o.TransactionResponse, count=3)
        check_reply(got, api.profit_table(), o.ProfitTableResponse)
        check_reply(got, api.statement(), o.StatementResponse)
        check_reply(got, api.logout(), o.LogoutResponse)
