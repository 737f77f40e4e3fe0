"""The new API's calls (:data:`HANDLERS`): those it shares with v3 (from :mod:`.handlers` and
:mod:`.trading`, answered in the new API's shapes) and its own: active_symbols in its new
shape, contracts_for, contracts_list, trading_times, profit_table, statement.

Like every handler, these run under the state's lock and return the reply or raise
:class:`~deriv_sdk.testing.envelope.ApiError`.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any, TypeVar

from deriv_sdk.testing import handlers, shapes, trading
from deriv_sdk.testing.envelope import ApiError, reply
from deriv_sdk.testing.market import SYMBOLS, Symbol
from deriv_sdk.testing.session import Session
from deriv_sdk.testing.state import ServerState


def active_symbols(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """``active_symbols``: the new API's fields; ``contract_type`` keeps the symbols that
    offer one of those types."""
    wanted = set(request.get("contract_type") or shapes.OFFERED)
    offered = bool(wanted & set(shapes.OFFERED))  # every symbol offers the same types here
    items = [shapes.active_symbol(s) for s in shapes.symbols()] if offered else []
    return reply("active_symbols", request, "active_symbols", items)


def _contracts(info: Symbol) -> list[dict[str, Any]]:
    common = {
        "default_stake": 10,
        "market": info.market,
        "payout_limit": 50000,
        "submarket": info.submarket,
        "underlying_symbol": info.symbol,
    }
    out = []
    for contract_type, sentiment in (("CALL", "up"), ("PUT", "down")):
        for expiry, low, high in (("tick", "1t", "10t"), ("intraday", "15s", "1d")):
            out.append(
                {
                    **common,
                    "barriers": 0,
                    "contract_category": "callput",
                    "contract_type": contract_type,
                    "expiry_type": expiry,
                    "max_contract_duration": high,
                    "min_contract_duration": low,
                    "sentiment": sentiment,
                }
            )
        out.append(
            {
                **common,
                "barrier": f"+{10 * info.pip:.{info.pip_size}f}",
                "barriers": 1,
                "contract_category": "callput",
                "contract_type": contract_type,
                "expiry_type": "intraday",
                "max_contract_duration": "1d",
                "min_contract_duration": "15s",
                "sentiment": sentiment,
            }
        )
    return out


def contracts_for(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """``contracts_for``: the rise/fall and higher/lower contracts of a symbol."""
    info = SYMBOLS.get(request["contracts_for"])
    if info is None:
        raise ApiError("InvalidSymbol", f"Symbol {request['contracts_for']} invalid.")
    available = _contracts(info)
    payload = {"available": available, "hit_count": len(available)}
    return reply("contracts_for", request, "contracts_for", payload)


def contracts_list(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """``contracts_list``: the contract categories this server offers."""
    items = [
        {
            "contract_category": "callput",
            "contract_types": list(shapes.OFFERED),
            "display_name": "Up/Down",
        }
    ]
    return reply("contracts_list", request, "contracts_list", items)


def trading_times(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """``trading_times``: synthetic indices trade all day every day; the forex pair, never."""
    day = request["trading_times"]
    if day != "today":
        try:
            datetime.strptime(day, "%Y-%m-%d")
        except ValueError:
            raise ApiError("InputValidationFailed", "Invalid date.") from None
    markets: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for info in shapes.symbols():
        item = {
            "events": [],
            "name": info.display_name,
            "times": (
                {"open": ["00:00:00"], "close": ["23:59:59"], "settlement": "23:59:59"}
                if info.is_open
                else {"open": ["--"], "close": ["--"], "settlement": ""}
            ),
            "trading_days": (
                ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
                if info.is_open
                else ["Mon", "Tue", "Wed", "Thu", "Fri"]
            ),
            "underlying_symbol": info.symbol,
        }
        submarkets = markets.setdefault(info.market_display_name, {})
        submarkets.setdefault(info.submarket_display_name, []).append(item)
    payload = {
        "markets": [
            {
                "name": market,
                "submarkets": [{"name": sub, "symbols": items} for sub, items in subs.items()],
            }
            for market, subs in markets.items()
        ]
    }
    return reply("trading_times", request, "trading_times", payload)


_T = TypeVar("_T")

_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")


def _epoch(text: str, end_of_day: bool) -> int:
    """An epoch from ``profit_table``'s ``date_from``/``date_to`` (epoch or YYYY-MM-DD)."""
    if _DATE.match(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            raise ApiError("InputValidationFailed", "Invalid date.") from None
        return int(day.timestamp()) + (86399 if end_of_day else 0)
    return int(text)


def _page(rows: list[_T], request: dict[str, Any], default: int) -> list[_T]:
    offset = int(request.get("offset", 0))
    limit = int(request.get("limit", default))
    return rows[offset : offset + limit]


def profit_table(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """``profit_table``: the account's closed contracts (``description: 1`` adds longcodes)."""
    account = trading.account_of(session)
    start = _epoch(str(request["date_from"]), False) if "date_from" in request else 0
    end = _epoch(str(request["date_to"]), True) if "date_to" in request else int(time.time()) + 1
    types = request.get("contract_type")
    closed = [
        c
        for c in state.contracts.values()
        if c.loginid == account.loginid
        and c.is_sold
        and c.sell_time is not None
        and start <= c.sell_time <= end
        and (not types or c.contract_type in types)
    ]
    closed.sort(
        key=lambda c: (c.sell_time or 0, c.contract_id), reverse=request.get("sort") != "ASC"
    )
    rows = []
    for c in _page(closed, request, 50):
        row: dict[str, Any] = {
            "buy_price": c.buy_price,
            "contract_id": c.contract_id,
            "contract_type": c.contract_type,
            "duration_type": "ticks" if c.duration_ticks else "seconds",
            "payout": c.payout,
            "purchase_time": c.date_start,
            "sell_price": c.sell_price,
            "sell_time": c.sell_time,
            "shortcode": c.shortcode,
            "transaction_id": c.buy_transaction_id,
            "underlying_symbol": c.symbol,
        }
        if request.get("description") == 1:
            row["longcode"] = c.longcode
        rows.append(row)
    return reply(
        "profit_table", request, "profit_table", {"count": len(rows), "transactions": rows}
    )


def statement(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    """``statement``: the account's transactions, newest first (``description: 1`` adds
    longcodes)."""
    account = trading.account_of(session)
    start = int(request.get("date_from", 0))
    end = int(request.get("date_to", int(time.time()) + 1))
    action = request.get("action_type")
    entries = [
        e
        for e in reversed(state.statements.get(account.loginid, ()))
        if start <= e["transaction_time"] <= end and (action is None or e["action_type"] == action)
    ]
    rows = []
    for entry in _page(entries, request, 100):
        row = dict(entry)
        if request.get("description") != 1:
            row.pop("longcode", None)
        rows.append(row)
    return reply("statement", request, "statement", {"count": len(rows), "transactions": rows})


HANDLERS: dict[str, handlers.Handler] = {
    "active_symbols": active_symbols,
    "balance": trading.balance,
    "buy": trading.buy,
    "contracts_for": contracts_for,
    "contracts_list": contracts_list,
    "forget": handlers.forget,
    "forget_all": handlers.forget_all,
    "logout": handlers.logout,
    "ping": handlers.ping,
    "portfolio": trading.portfolio,
    "profit_table": profit_table,
    "proposal": trading.proposal,
    "proposal_open_contract": trading.proposal_open_contract,
    "sell": trading.sell,
    "statement": statement,
    "ticks": handlers.ticks,
    "ticks_history": handlers.ticks_history,
    "time": handlers.server_time,
    "trading_times": trading_times,
    "transaction": trading.transaction,
}
