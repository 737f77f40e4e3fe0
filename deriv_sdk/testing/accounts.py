"""Accounts, contract pricing and contract settlement (pure logic, no I/O).

Only ``CALL`` and ``PUT`` (rise/fall, optionally with a barrier) are offered. Prices follow a
simple digital-option model on the random walk of :mod:`deriv_sdk.testing.market`, with a 2%
commission, rounded to cents. Tick durations (``t``) count the ticks of the underlying after
the entry tick; time durations (``s``, ``m``, ``h``, ``d`` or ``date_expiry``) settle on the
first tick at or after the expiry time.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from deriv_sdk.testing.envelope import ApiError
from deriv_sdk.testing.market import SYMBOLS, Market, format_quote

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SECONDS_PER_YEAR = 365 * 24 * 3600
_COMMISSION = 0.02
_ids = itertools.count(11_000_000_001)
_login_ids = itertools.count(90_000_001)


def next_id() -> int:
    """A fresh contract or transaction id (process-wide, increasing)."""
    return next(_ids)


@dataclass
class Account:
    """A trading account, shared by every connection authorized with its token."""

    token: str = field(repr=False)
    loginid: str
    currency: str = "USD"
    balance: float = 10000.0
    email: str = "test@example.com"
    fullname: str = "Local Test Trader"
    country: str = "id"
    scopes: list[str] = field(default_factory=lambda: ["read", "trade", "trading_information"])
    user_id: int = 1
    landing_company_name: str = "virtual"

    @property
    def is_virtual(self) -> int:
        """1 for a demo account (loginid starting with VR), else 0."""
        return 1 if self.loginid.startswith("VR") else 0

    def authorize_payload(self) -> dict[str, Any]:
        """The ``authorize`` object of the reply."""
        return {
            "account_list": [
                {
                    "account_category": "trading",
                    "account_type": "binary",
                    "broker": self.loginid.rstrip("0123456789"),
                    "currency": self.currency,
                    "currency_type": "fiat",
                    "is_disabled": 0,
                    "is_virtual": self.is_virtual,
                    "landing_company_name": self.landing_company_name,
                    "linked_to": [],
                    "loginid": self.loginid,
                }
            ],
            "balance": self.balance,
            "country": self.country,
            "currency": self.currency,
            "email": self.email,
            "fullname": self.fullname,
            "is_virtual": self.is_virtual,
            "landing_company_fullname": "Deriv Limited",
            "landing_company_name": self.landing_company_name,
            "linked_to": [],
            "local_currencies": {self.currency: {"fractional_digits": 2}},
            "loginid": self.loginid,
            "preferred_language": "EN",
            "scopes": list(self.scopes),
            "upgradeable_landing_companies": [],
            "user_id": self.user_id,
        }


_ACCOUNT_FIELDS = {f for f in Account.__dataclass_fields__ if f != "token"}


def make_accounts(tokens: list[str] | dict[str, dict[str, Any]] | None) -> dict[str, Account]:
    """Build the token -> :class:`Account` table from the ``tokens`` argument of the server."""
    if tokens is None:
        return {}
    out: dict[str, Account] = {}
    items = tokens.items() if isinstance(tokens, dict) else ((t, {}) for t in tokens)
    for user_id, (token, fields) in enumerate(items, start=1):
        values = {"loginid": f"VRTC{next(_login_ids)}", "user_id": user_id, **fields}
        values["balance"] = float(values.get("balance", 10000.0))
        unknown = set(values) - _ACCOUNT_FIELDS
        if unknown:
            raise ValueError(f"unknown account fields for a token: {sorted(unknown)}")
        out[token] = Account(token=token, **values)
    return out


@dataclass
class Contract:
    """A bought CALL/PUT contract and its state."""

    contract_id: int
    loginid: str
    currency: str
    symbol: str
    contract_type: str
    buy_price: float
    payout: float
    barrier_offset: float | None  # relative barrier, or None when absolute
    barrier_value: float | None  # absolute barrier (set at entry when relative)
    duration_ticks: int | None  # tick contracts
    date_start: int
    date_expiry: int
    longcode: str
    shortcode: str
    buy_transaction_id: int
    entry_tick: tuple[int, float] | None = None
    ticks: list[tuple[int, float]] = field(default_factory=list)
    current: tuple[int, float] | None = None
    is_sold: bool = False
    sell_price: float = 0.0
    sell_time: int | None = None
    sell_transaction_id: int | None = None
    status: str = "open"

    def on_tick(self, epoch: int, quote: float) -> bool:
        """Record a tick of the underlying; return True when the contract just expired."""
        if self.is_sold:
            return False
        self.current = (epoch, quote)
        if self.entry_tick is None:
            self.entry_tick = (epoch, quote)
            if self.barrier_value is None:
                self.barrier_value = quote + (self.barrier_offset or 0.0)
            return False
        self.ticks.append((epoch, quote))
        if self.duration_ticks is not None:
            return len(self.ticks) >= self.duration_ticks
        return epoch >= self.date_expiry

    def won(self) -> bool:
        """Whether the current (exit) spot wins against the barrier."""
        if self.current is None or self.barrier_value is None:
            return False
        spot = self.current[1]
        return (
            spot > self.barrier_value if self.contract_type == "CALL" else spot < self.barrier_value
        )

    def bid_price(self, now: int) -> float:
        """What the contract is worth now (its sell price)."""
        if self.is_sold:
            return self.sell_price
        if self.current is None or self.barrier_value is None:
            return round(self.buy_price * (1 - _COMMISSION), 2)
        remaining = max(1, self.date_expiry - now)
        if self.duration_ticks is not None:
            remaining = max(1, self.duration_ticks - len(self.ticks))
        prob = _probability(
            self.symbol, self.contract_type, self.current[1], self.barrier_value, remaining
        )
        return round(max(0.0, self.payout * (prob - _COMMISSION)), 2)

    def settle(self, now: int, sell_price: float | None = None) -> None:
        """Mark sold: at expiry (``sell_price`` None: payout or 0) or early at ``sell_price``."""
        if sell_price is None:
            won = self.won()
            self.sell_price = self.payout if won else 0.0
            self.status = "won" if won else "lost"
        else:
            self.sell_price = sell_price
            self.status = "sold"
        self.is_sold = True
        self.sell_time = now
        self.sell_transaction_id = next_id()

    def expired(self) -> bool:
        """Whether the contract reached its expiry (tick count or time)."""
        if self.duration_ticks is not None:
            return len(self.ticks) >= self.duration_ticks
        return self.current is not None and self.current[0] >= self.date_expiry

    def open_contract(self, now: int) -> dict[str, Any]:
        """The ``proposal_open_contract`` object describing the contract now."""
        info = SYMBOLS[self.symbol]
        bid = self.bid_price(now)
        value = self.sell_price if self.is_sold else bid
        poc: dict[str, Any] = {
            "account_id": int(self.loginid.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ") or 0),
            "barrier_count": 1,
            "bid_price": bid,
            "buy_price": self.buy_price,
            "contract_id": self.contract_id,
            "contract_type": self.contract_type,
            "currency": self.currency,
            "date_expiry": self.date_expiry,
            "date_settlement": self.date_expiry,
            "date_start": self.date_start,
            "display_name": info.display_name,
            "expiry_time": self.date_expiry,
            "is_expired": 1 if self.is_sold or self.expired() else 0,
            "is_forward_starting": 0,
            "is_intraday": 1,
            "is_path_dependent": 0,
            "is_settleable": 1 if self.expired() else 0,
            "is_sold": 1 if self.is_sold else 0,
            "is_valid_to_cancel": 0,
            "is_valid_to_sell": 0 if self.is_sold else 1,
            "longcode": self.longcode,
            "payout": self.payout,
            "profit": round(value - self.buy_price, 2),
            "profit_percentage": round((value - self.buy_price) / self.buy_price * 100, 2),
            "purchase_time": self.date_start,
            "shortcode": self.shortcode,
            "status": self.status,
            "tick_count": self.duration_ticks or 0,
            "tick_passed": len(self.ticks),
            "transaction_ids": {"buy": self.buy_transaction_id},
            "underlying": self.symbol,
        }
        if self.barrier_value is not None:
            poc["barrier"] = format_quote(self.symbol, self.barrier_value)
        if self.current is not None:
            poc["current_spot"] = self.current[1]
            poc["current_spot_display_value"] = format_quote(self.symbol, self.current[1])
            poc["current_spot_time"] = self.current[0]
        if self.entry_tick is not None:
            epoch, quote = self.entry_tick
            poc["entry_spot"] = quote
            poc["entry_spot_display_value"] = format_quote(self.symbol, quote)
            poc["entry_tick"] = quote
            poc["entry_tick_display_value"] = format_quote(self.symbol, quote)
            poc["entry_tick_time"] = epoch
        if self.duration_ticks is not None:
            poc["tick_stream"] = [
                {"epoch": e, "tick": q, "tick_display_value": format_quote(self.symbol, q)}
                for e, q in ([self.entry_tick] if self.entry_tick else []) + self.ticks
            ]
        if self.is_sold:
            if self.current is not None:
                poc["exit_tick"] = self.current[1]
                poc["exit_tick_display_value"] = format_quote(self.symbol, self.current[1])
                poc["exit_tick_time"] = self.current[0]
                poc["sell_spot"] = self.current[1]
                poc["sell_spot_display_value"] = format_quote(self.symbol, self.current[1])
                poc["sell_spot_time"] = self.current[0]
            poc["sell_price"] = self.sell_price
            poc["sell_time"] = self.sell_time
            if self.sell_transaction_id is not None:
                poc["transaction_ids"]["sell"] = self.sell_transaction_id
        return poc


def _probability(
    symbol: str, contract_type: str, spot: float, barrier: float, seconds: int
) -> float:
    """Chance that a CALL (or PUT) finishes in the money, under the random walk."""
    sigma = SYMBOLS[symbol].volatility * math.sqrt(max(1, seconds) / _SECONDS_PER_YEAR)
    d = math.log(spot / barrier) / sigma if barrier > 0 else 10.0
    prob_call = 0.5 * (1 + math.erf(d / math.sqrt(2)))
    prob = prob_call if contract_type == "CALL" else 1 - prob_call
    return min(0.97, max(0.03, prob))


@dataclass
class Quote:
    """A priced proposal: what ``buy`` will create."""

    params: dict[str, Any]
    symbol: str
    contract_type: str
    ask_price: float
    payout: float
    barrier_offset: float | None
    barrier_value: float | None
    duration_ticks: int | None
    seconds: int
    longcode: str
    shortcode: str
    spot: float
    spot_time: int

    def payload(self, proposal_id: str, now: int) -> dict[str, Any]:
        """The ``proposal`` object of a proposal message."""
        out: dict[str, Any] = {
            "ask_price": self.ask_price,
            "date_expiry": now + self.seconds,
            "date_start": now,
            "display_value": f"{self.ask_price:.2f}",
            "id": proposal_id,
            "longcode": self.longcode,
            "payout": self.payout,
            "spot": self.spot,
            "spot_time": self.spot_time,
        }
        if self.barrier_offset is not None or self.barrier_value is not None:
            barrier = self.barrier_value or self.spot + (self.barrier_offset or 0.0)
            out["contract_details"] = {"barrier": format_quote(self.symbol, barrier)}
        return out


def price(params: dict[str, Any], market: Market, now: int) -> Quote:
    """Price a CALL/PUT from ``proposal`` (or ``buy`` ``parameters``) fields.

    Raises:
        ApiError: ``MarketIsClosed``, ``ContractValidationError`` or ``OfferingsValidationError``.
    """
    symbol = str(params.get("symbol", ""))
    info = SYMBOLS.get(symbol)
    if info is None:
        raise ApiError("InvalidSymbol", f"Symbol {symbol} is invalid.")
    if not info.is_open:
        raise ApiError("MarketIsClosed", "This market is presently closed.")
    contract_type = str(params.get("contract_type", ""))
    if contract_type not in ("CALL", "PUT"):
        raise ApiError("OfferingsValidationError", "Trading is not offered for this contract type.")
    if "amount" not in params:
        raise ApiError("ContractValidationError", "Please specify the amount.")
    duration_ticks: int | None = None
    if "duration" in params:
        unit = params.get("duration_unit", "s")
        duration = int(params["duration"])
        if unit == "t":
            if not 1 <= duration <= 10:
                raise ApiError(
                    "ContractValidationError", "Number of ticks must be between 1 and 10."
                )
            duration_ticks = duration
            seconds = duration * 2
        else:
            seconds = duration * _SECONDS[unit]
    elif "date_expiry" in params:
        seconds = int(params["date_expiry"]) - now
    else:
        raise ApiError("ContractValidationError", "Please specify either duration or date_expiry.")
    if seconds < 1:
        raise ApiError("ContractValidationError", "Contract duration must be at least 1 second.")
    spot = market.quotes[symbol]
    offset: float | None = None
    absolute: float | None = None
    barrier_text = params.get("barrier")
    if barrier_text is not None:
        try:
            if barrier_text[0] in "+-":
                offset = float(barrier_text)
            else:
                absolute = float(barrier_text)
        except (ValueError, IndexError):
            raise ApiError("ContractValidationError", "Barrier is not a number.") from None
    barrier = absolute if absolute is not None else spot + (offset or 0.0)
    prob = _probability(symbol, contract_type, spot, barrier, seconds) + _COMMISSION
    amount = float(params["amount"])
    if params.get("basis", "payout") == "stake":
        ask, payout = round(amount, 2), round(amount / prob, 2)
    else:
        ask, payout = round(amount * prob, 2), round(amount, 2)
    if ask < 0.35:
        raise ApiError("ContractBuyValidationError", "Minimum stake of 0.35 is required.")
    direction = "strictly higher" if contract_type == "CALL" else "strictly lower"
    target = "entry spot" if barrier_text is None else f"entry spot {barrier_text}"
    if absolute is not None:
        target = format_quote(symbol, absolute)
    when = (
        f"{duration_ticks} ticks after the entry spot" if duration_ticks else f"{seconds} seconds"
    )
    longcode = (
        f"Win payout if {info.display_name} after {when} is {direction} than {target}."
        if duration_ticks
        else f"Win payout if {info.display_name} is {direction} than {target} at {when} "
        f"after contract start time."
    )
    unit = "T" if duration_ticks else "S"
    shortcode = f"{contract_type}_{symbol}_{payout:.2f}_{now}_{duration_ticks or seconds}{unit}"
    return Quote(
        params=dict(params),
        symbol=symbol,
        contract_type=contract_type,
        ask_price=ask,
        payout=payout,
        barrier_offset=offset if absolute is None else None,
        barrier_value=absolute,
        duration_ticks=duration_ticks,
        seconds=seconds,
        longcode=longcode,
        shortcode=shortcode,
        spot=spot,
        spot_time=market.epochs[symbol] or now,
    )
