"""The calls that act on an account: balance, proposal, buy, proposal_open_contract, sell,
portfolio, transaction; and what every tick does to open contracts and price streams.

One implementation for both APIs: each message is built in the shape of the session it goes
to (:mod:`deriv_sdk.testing.shapes`), so that a v3 and a new-API client share one market, one
scheduler and one pricing. Like :mod:`deriv_sdk.testing.handlers`, every function here takes
the :class:`~deriv_sdk.testing.state.ServerState`, runs under its lock and only queues messages.
"""

from __future__ import annotations

import time
from typing import Any

from deriv_sdk.testing import shapes
from deriv_sdk.testing.accounts import Contract, next_id, price
from deriv_sdk.testing.envelope import ApiError, reply
from deriv_sdk.testing.market import SYMBOLS
from deriv_sdk.testing.pats import DEMO_BALANCE
from deriv_sdk.testing.session import Session, Stream, stream_key
from deriv_sdk.testing.state import AnyAccount, ProposalEntry, ServerState

#: Seconds a proposal id from a request without ``subscribe`` stays valid for ``buy``.
PROPOSAL_TTL = 60.0


def account_of(session: Session) -> AnyAccount:
    """The session's account (the router checked ``auth_required`` before the handler)."""
    assert session.account is not None
    return session.account


def _add_stream(
    session: Session, call: str, request: dict[str, Any], kind: str, msg_type: str, **data: Any
) -> str:
    # A buy's stream is its new contract's: two identical buys are two contracts.
    key = f"buy:{data['contract_id']}" if call == "buy" else stream_key(call, request)
    if key in session.stream_keys:
        raise ApiError("AlreadySubscribed", f"You are already subscribed to {call}.")
    symbol = data.pop("symbol", None)
    stream = Stream(session.new_id(), kind, call, request, key, msg_type, symbol, data)
    session.add_stream(stream)
    return stream.id


def _sessions_of(state: ServerState, account: AnyAccount) -> list[Session]:
    return [
        s
        for s in state.sessions_snapshot()
        if s.account is not None and s.account.loginid == account.loginid
    ]


# -- balance and transaction ---------------------------------------------------------------


def _balance_payload(
    account: AnyAccount, stream_id: str | None, everything: bool
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "balance": round(account.balance, 2),
        "currency": account.currency,
        "loginid": account.loginid,
    }
    if everything:
        payload["accounts"] = {
            account.loginid: {
                "balance": round(account.balance, 2),
                "converted_amount": round(account.balance, 2),
                "currency": account.currency,
                "demo_account": account.is_virtual,
                "status": 1,
                "type": "deriv",
            }
        }
        kind = "deriv_demo" if account.is_virtual else "deriv"
        payload["total"] = {kind: {"amount": round(account.balance, 2), "currency": "USD"}}
    if stream_id is not None:
        payload["id"] = stream_id
    return payload


def balance(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """``balance``: the current account's balance (v3's ``account: all`` adds ``accounts``)."""
    account = account_of(session)
    which = request.get("account", "current")
    if which not in ("current", "all", account.loginid):
        raise ApiError(
            "PermissionDenied", "Permission denied, balances of accounts cannot be accessed."
        )
    sub = None
    if request.get("subscribe") == 1:
        sub = _add_stream(session, "balance", request, "balance", "balance", all=which == "all")
    payload = _balance_payload(account, sub, which == "all")
    return reply("balance", request, "balance", payload, sub)


def transaction(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """``transaction``: start the stream of the account's transactions."""
    sub = _add_stream(session, "transaction", request, "transaction", "transaction")
    return reply("transaction", request, "transaction", {}, sub)


def _notify_account(state: ServerState, account: AnyAccount, tx: dict[str, Any]) -> None:
    """Send ``tx`` to the transaction streams and the new balance to the balance streams."""
    for session in _sessions_of(state, account):
        for stream in list(session.streams.values()):
            if stream.kind == "transaction":
                payload = {**shapes.transaction(session.api, tx), "id": stream.id}
                session.send(reply(stream.call, stream.request, "transaction", payload, stream.id))
            elif stream.kind == "balance":
                payload = _balance_payload(account, stream.id, bool(stream.data.get("all")))
                session.send(reply(stream.call, stream.request, "balance", payload, stream.id))


def _tx(
    contract: Contract, account: AnyAccount, action: str, amount: float, now: int
) -> dict[str, Any]:
    tx: dict[str, Any] = {
        "action": action,
        "amount": round(amount, 2),
        "balance": round(account.balance, 2),
        "contract_id": contract.contract_id,
        "currency": contract.currency,
        "date_expiry": contract.date_expiry,
        "display_name": SYMBOLS[contract.symbol].display_name,
        "longcode": contract.longcode,
        "symbol": contract.symbol,
        "transaction_id": contract.buy_transaction_id,
        "transaction_time": now,
    }
    if action == "sell":
        tx["purchase_time"] = contract.date_start
        tx["transaction_id"] = contract.sell_transaction_id
    return tx


def _record(
    state: ServerState, account: AnyAccount, tx: dict[str, Any], contract: Contract
) -> None:
    """Add the ``statement`` row of transaction ``tx`` of ``contract``."""
    state.add_statement(
        account.loginid,
        {
            "action_type": tx["action"],
            "amount": tx["amount"],
            "balance_after": tx["balance"],
            "contract_id": contract.contract_id,
            "longcode": contract.longcode,
            "payout": contract.payout,
            "purchase_time": contract.date_start,
            "reference_id": contract.buy_transaction_id if tx["action"] == "sell" else None,
            "shortcode": contract.shortcode,
            "transaction_id": tx["transaction_id"],
            "transaction_time": tx["transaction_time"],
        },
    )


def _book(
    state: ServerState,
    account: AnyAccount,
    contract: Contract,
    action: str,
    amount: float,
    now: int,
) -> None:
    """Book a buy or sell: statement row, transaction and balance stream messages."""
    tx = _tx(contract, account, action, amount, now)
    _record(state, account, tx, contract)
    _notify_account(state, account, tx)


def reset_balance(state: ServerState, account: AnyAccount) -> None:
    """Put a demo account back to 10,000 (REST ``reset-demo-balance``), as a deposit or a
    withdrawal of the difference, and tell its balance and transaction streams."""
    now = int(time.time())
    amount = round(DEMO_BALANCE - account.balance, 2)
    account.balance = DEMO_BALANCE
    if amount == 0:
        return
    action = "deposit" if amount > 0 else "withdrawal"
    tx_id = next_id()
    state.add_statement(
        account.loginid,
        {
            "action_type": action,
            "amount": amount,
            "balance_after": DEMO_BALANCE,
            "contract_id": None,
            "longcode": "Reset of the demo account balance",
            "payout": None,
            "reference_id": None,
            "shortcode": None,
            "transaction_id": tx_id,
            "transaction_time": now,
        },
    )
    tx = {
        "action": action,
        "amount": amount,
        "balance": DEMO_BALANCE,
        "contract_id": None,
        "currency": account.currency,
        "longcode": "Reset of the demo account balance",
        "transaction_id": tx_id,
        "transaction_time": now,
    }
    _notify_account(state, account, tx)


# -- proposal, buy, sell -------------------------------------------------------------------


def proposal(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """``proposal``: price a CALL/PUT; with ``subscribe`` re-priced on every tick."""
    now = int(time.time())
    quote = price(shapes.contract_params(session.api, request), state.market, now)
    if request.get("subscribe") == 1:
        sub = _add_stream(session, "proposal", request, "proposal", "proposal", symbol=quote.symbol)
        state.proposals[sub] = ProposalEntry(quote, session, None)
        payload = shapes.proposal(session.api, quote, sub, now)
        return reply("proposal", request, "proposal", payload, sub)
    proposal_id = session.new_id()
    state.proposals[proposal_id] = ProposalEntry(quote, session, time.monotonic() + PROPOSAL_TTL)
    payload = shapes.proposal(session.api, quote, proposal_id, now)
    return reply("proposal", request, "proposal", payload)


def buy(state: ServerState, session: Session, request: dict[str, Any]) -> None:
    """``buy``: from a proposal id, or ``"1"`` with ``parameters``; debits the balance."""
    account = account_of(session)
    now = int(time.time())
    if request["buy"] == "1":
        if "parameters" not in request:
            raise ApiError("InvalidContractProposal", "Unknown contract proposal")
        params = shapes.contract_params(session.api, request["parameters"])
        quote = price(params, state.market, now)
    else:
        entry = state.proposals.get(request["buy"])
        if (
            entry is None
            or entry.session is not session
            or (entry.expires is not None and entry.expires < time.monotonic())
        ):
            raise ApiError("InvalidContractProposal", "Unknown contract proposal")
        quote = entry.quote
    if float(request["price"]) < quote.ask_price:
        raise ApiError(
            "PriceMoved",
            "The underlying market has moved too much since you priced the contract. "
            f"The contract price has changed from {float(request['price']):.2f} "
            f"{account.currency} to {quote.ask_price:.2f} {account.currency}.",
        )
    if quote.ask_price > account.balance:
        raise ApiError(
            "InsufficientBalance",
            f"Your account balance ({account.currency}{account.balance:.2f}) is insufficient "
            f"to buy this contract ({account.currency}{quote.ask_price:.2f}).",
        )
    if request["buy"] != "1":
        # Deriv ends a proposal's stream once it is bought.
        state.proposals.pop(request["buy"], None)
        session.remove_stream(request["buy"])
    contract = Contract(
        contract_id=next_id(),
        loginid=account.loginid,
        currency=account.currency,
        symbol=quote.symbol,
        contract_type=quote.contract_type,
        buy_price=quote.ask_price,
        payout=quote.payout,
        barrier_offset=quote.barrier_offset,
        barrier_value=quote.barrier_value,
        duration_ticks=quote.duration_ticks,
        date_start=now,
        date_expiry=now + quote.seconds,
        longcode=quote.longcode,
        shortcode=quote.shortcode,
        buy_transaction_id=next_id(),
    )
    account.balance = round(account.balance - contract.buy_price, 2)
    state.contracts[contract.contract_id] = contract
    sub = None
    if request.get("subscribe") == 1:
        sub = _add_stream(
            session, "buy", request, "proposal_open_contract", "proposal_open_contract",
            symbol=contract.symbol, contract_id=contract.contract_id,
        )  # fmt: skip
    receipt = {
        "balance_after": account.balance,
        "buy_price": contract.buy_price,
        "contract_id": contract.contract_id,
        "longcode": contract.longcode,
        "payout": contract.payout,
        "purchase_time": now,
        "shortcode": contract.shortcode,
        "start_time": now,
        "transaction_id": contract.buy_transaction_id,
    }
    # Sent here, not returned, so that it comes before the balance and transaction updates.
    session.send(reply("buy", request, "buy", receipt, sub))
    _book(state, account, contract, "buy", -contract.buy_price, now)


def sell(state: ServerState, session: Session, request: dict[str, Any]) -> None:
    """``sell``: sell an open contract at its bid price (``price`` is the minimum accepted)."""
    account = account_of(session)
    now = int(time.time())
    contract = state.contracts.get(request["sell"])
    if contract is None or contract.loginid != account.loginid or contract.is_sold:
        raise ApiError(
            "InvalidSellContractProposal",
            "This contract was not found among your open positions.",
        )
    bid = contract.bid_price(now)
    if float(request["price"]) > bid:
        raise ApiError(
            "PriceMoved",
            "The underlying market has moved too much since you priced the contract. "
            f"The contract sell price has changed to {bid:.2f} {account.currency}.",
        )
    contract.settle(now, sell_price=bid)
    account.balance = round(account.balance + bid, 2)
    assert contract.sell_transaction_id is not None
    receipt = {
        "balance_after": account.balance,
        "contract_id": contract.contract_id,
        "reference_id": contract.buy_transaction_id,
        "sold_for": bid,
        "transaction_id": contract.sell_transaction_id,
    }
    session.send(reply("sell", request, "sell", receipt))
    _send_contract_updates(state, [contract], now)
    _book(state, account, contract, "sell", bid, now)


def portfolio(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """``portfolio``: the account's open contracts."""
    account = account_of(session)
    types = request.get("contract_type")
    contracts = [
        shapes.portfolio_row(session.api, c)
        for c in state.contracts.values()
        if c.loginid == account.loginid
        and not c.is_sold
        and (not types or c.contract_type in types)
    ]
    return reply("portfolio", request, "portfolio", {"contracts": contracts})


# -- proposal_open_contract ----------------------------------------------------------------


def proposal_open_contract(
    state: ServerState, session: Session, request: dict[str, Any]
) -> dict[str, Any]:
    """``proposal_open_contract``: one contract (``contract_id``) or all open ones.

    An unknown contract id gets an empty ``proposal_open_contract`` object, as on Deriv. A sold
    contract gets its final state and no stream.
    """
    account = account_of(session)
    now = int(time.time())
    wanted = request.get("contract_id")
    if wanted is not None:
        found = state.contracts.get(wanted)
        contracts = [found] if found is not None and found.loginid == account.loginid else []
    else:
        contracts = [c for c in state.contracts.values() if c.loginid == account.loginid]
        contracts = [c for c in contracts if not c.is_sold]
    sub = None
    if request.get("subscribe") == 1 and (
        wanted is None or (contracts and not contracts[0].is_sold)
    ):
        sub = _add_stream(
            session, "proposal_open_contract", request, "proposal_open_contract",
            "proposal_open_contract", contract_id=wanted,
            symbol=contracts[0].symbol if wanted is not None else None,
        )  # fmt: skip
    if not contracts:
        return reply("proposal_open_contract", request, "proposal_open_contract", {}, sub)
    messages = [
        _poc_message(session, c, request, "proposal_open_contract", sub, now) for c in contracts
    ]
    for extra in messages[1:]:
        session.send(extra)
    return messages[0]


def _poc_message(
    session: Session,
    contract: Contract,
    request: dict[str, Any],
    call: str,
    sub: str | None,
    now: int,
) -> dict[str, Any]:
    """A POC message; the last one of a one-contract stream (sold) has no subscription, one
    of the stream of every open contract (no ``contract_id``) keeps it."""
    payload = shapes.open_contract(session.api, contract, now)
    one_contract = request.get("contract_id") is not None or call == "buy"
    if contract.is_sold and one_contract:
        sub = None
    if sub is not None:
        payload["id"] = sub
    return reply(call, request, "proposal_open_contract", payload, sub)


def _send_contract_updates(state: ServerState, contracts: list[Contract], now: int) -> None:
    """Send the POC stream messages about ``contracts``; end the streams of sold ones."""
    for session in state.sessions_snapshot():
        account = session.account
        if account is None:
            continue
        for stream in list(session.streams.values()):
            if stream.kind != "proposal_open_contract":
                continue
            wanted = stream.data.get("contract_id")
            for contract in contracts:
                if contract.loginid != account.loginid:
                    continue
                if wanted is not None and wanted != contract.contract_id:
                    continue
                message = _poc_message(
                    session, contract, stream.request, stream.call, stream.id, now
                )
                session.send(message)
                if contract.is_sold and wanted is not None:
                    session.remove_stream(stream.id)


def trading_tick(state: ServerState, symbol: str, epoch: int, quote: float) -> None:
    """What a tick of ``symbol`` does: contracts move or settle, price streams update."""
    touched: list[Contract] = []
    settled: list[Contract] = []
    for contract in state.contracts.values():
        if contract.symbol != symbol or contract.is_sold:
            continue
        touched.append(contract)
        if contract.on_tick(epoch, quote):
            contract.settle(epoch)
            settled.append(contract)
    if touched:
        _send_contract_updates(state, touched, epoch)
    for contract in settled:
        account = state.accounts_by_login[contract.loginid]
        account.balance = round(account.balance + contract.sell_price, 2)
        _book(state, account, contract, "sell", contract.sell_price, epoch)
    now_mono = time.monotonic()
    for proposal_id, entry in list(state.proposals.items()):
        if entry.expires is not None and entry.expires < now_mono:
            del state.proposals[proposal_id]
    for session in state.sessions_snapshot():
        for stream in list(session.streams.values()):
            if stream.kind == "proposal" and stream.symbol == symbol:
                try:
                    params = shapes.contract_params(session.api, stream.request)
                    new = price(params, state.market, epoch)
                except ApiError:
                    continue
                state.proposals[stream.id] = ProposalEntry(new, session, None)
                payload = shapes.proposal(session.api, new, stream.id, epoch)
                session.send(reply("proposal", stream.request, "proposal", payload, stream.id))
