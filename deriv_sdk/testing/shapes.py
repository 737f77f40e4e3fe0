"""The new API's shapes of the payloads that both APIs share (pure functions, no I/O).

The trading code builds v3 payloads; a session of the new API sends them through these
functions, which follow ``schemas/options/*_response.schema.json`` (their ``additionalProperties:
false`` objects) and NEW-API.md section 4.4: ``underlying_symbol`` where v3 says ``symbol``
or ``underlying``, no ``display_name``/``*_display_value``/``app_id``, and the money and spot
fields of ``proposal_open_contract`` as strings. ``tick.symbol`` stays as it is.
"""

from __future__ import annotations

from typing import Any

from deriv_sdk.testing.accounts import Contract, Quote
from deriv_sdk.testing.market import SYMBOLS, Symbol, format_quote
from deriv_sdk.testing.validation import LEGACY, OPTIONS

#: Fields of v3's ``proposal_open_contract`` object that the new API keeps as they are.
_POC_KEPT = (
    "account_id",
    "barrier_count",
    "contract_id",
    "contract_type",
    "currency",
    "current_spot_time",
    "date_expiry",
    "date_settlement",
    "date_start",
    "expiry_time",
    "id",
    "is_expired",
    "is_intraday",
    "is_path_dependent",
    "is_settleable",
    "is_sold",
    "is_valid_to_cancel",
    "is_valid_to_sell",
    "longcode",
    "profit_percentage",
    "purchase_time",
    "sell_time",
    "shortcode",
    "status",
    "tick_count",
    "tick_passed",
    "tick_stream",
    "transaction_ids",
)

#: Money fields of ``proposal_open_contract`` that the new API sends as strings.
_POC_MONEY = ("bid_price", "buy_price", "payout", "profit", "sell_price")


def money(value: float) -> str:
    """A money amount as the new API writes it in strings (two decimals)."""
    return f"{value:.2f}"


def open_contract(api: str, contract: Contract, now: int) -> dict[str, Any]:
    """The ``proposal_open_contract`` object of ``contract`` in ``api``'s shape."""
    v3 = contract.open_contract(now)
    if api == LEGACY:
        return v3
    symbol = contract.symbol
    out: dict[str, Any] = {k: v3[k] for k in _POC_KEPT if k in v3}
    for key in _POC_MONEY:
        if key in v3:
            out[key] = money(v3[key])
    out["underlying_symbol"] = symbol
    out["barrier"] = v3.get("barrier")
    if "current_spot" in v3:
        out["current_spot"] = format_quote(symbol, v3["current_spot"])
    entry = contract.entry_tick
    out["entry_spot"] = format_quote(symbol, entry[1]) if entry else None
    out["entry_spot_time"] = entry[0] if entry else None
    if contract.is_sold and contract.current is not None:
        out["exit_spot"] = format_quote(symbol, contract.current[1])
        out["exit_spot_time"] = contract.current[0]
    return out


def proposal(api: str, quote: Quote, proposal_id: str, now: int) -> dict[str, Any]:
    """The ``proposal`` object of a price (the new API has no ``display_value``)."""
    payload = quote.payload(proposal_id, now)
    if api == OPTIONS:
        payload.pop("display_value", None)
    return payload


def transaction(api: str, tx: dict[str, Any]) -> dict[str, Any]:
    """The ``transaction`` object of a v3 transaction ``tx`` in ``api``'s shape."""
    if api == LEGACY:
        return tx
    out = {k: v for k, v in tx.items() if k not in ("display_name", "symbol")}
    if "symbol" in tx:
        out["underlying_symbol"] = tx["symbol"]
    return out


def portfolio_row(api: str, contract: Contract) -> dict[str, Any]:
    """One ``portfolio.contracts`` item."""
    row: dict[str, Any] = {
        "buy_price": contract.buy_price,
        "contract_id": contract.contract_id,
        "contract_type": contract.contract_type,
        "currency": contract.currency,
        "date_start": contract.date_start,
        "expiry_time": contract.date_expiry,
        "longcode": contract.longcode,
        "payout": contract.payout,
        "purchase_time": contract.date_start,
        "shortcode": contract.shortcode,
        "transaction_id": contract.buy_transaction_id,
    }
    if api == LEGACY:
        row["app_id"] = 1089
        row["symbol"] = contract.symbol
    else:
        row["underlying_symbol"] = contract.symbol
    return row


def contract_params(api: str, params: dict[str, Any]) -> dict[str, Any]:
    """``proposal`` (or ``buy.parameters``) fields as the pricing code reads them (``symbol``)."""
    if api == OPTIONS and "underlying_symbol" in params:
        out = {k: v for k, v in params.items() if k != "underlying_symbol"}
        out["symbol"] = params["underlying_symbol"]
        return out
    return params


def active_symbol(info: Symbol) -> dict[str, Any]:
    """One item of the new API's ``active_symbols`` (the same for ``brief`` and ``full``).

    ``pip_size`` is the price step here (``0.001``), unlike the decimals count of ticks.
    """
    synthetic = info.market == "synthetic_index"
    return {
        "exchange_is_open": 1 if info.is_open else 0,
        "is_trading_suspended": 0,
        "market": info.market,
        "pip_size": info.pip,
        "subgroup": "synthetics" if synthetic else "none",
        "submarket": info.submarket,
        "trade_count": len(OFFERED),
        "underlying_symbol": info.symbol,
        "underlying_symbol_name": info.display_name,
        "underlying_symbol_type": "stockindex" if synthetic else "forex",
    }


#: The contract types this server prices (rise/fall and higher/lower, by barrier).
OFFERED = ("CALL", "PUT")


def symbols() -> list[Symbol]:
    """Every symbol, in display order."""
    return sorted(SYMBOLS.values(), key=lambda s: s.display_order)
