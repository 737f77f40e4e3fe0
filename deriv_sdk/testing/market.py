"""The simulated market: symbols, seeded random-walk quotes, tick history and candles.

Pure logic, no sockets and no threads: :class:`Market` is advanced by the server's scheduler
thread and read by the request handlers, both under the server's state lock.

Symbols: five synthetic indices (``R_10``, ``R_25``, ``R_50``, ``R_75``, ``R_100``) that are
open all the time, and ``frxEURUSD``, a forex pair whose exchange is always closed (its ticks
and proposals get ``MarketIsClosed``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Symbol:
    """Static description of one underlying, in ``active_symbols`` terms."""

    symbol: str
    display_name: str
    market: str
    market_display_name: str
    submarket: str
    submarket_display_name: str
    pip: float
    start_quote: float
    volatility: float  # annualised, as a fraction (R_100: 1.0)
    is_open: bool
    display_order: int

    @property
    def pip_size(self) -> int:
        """Number of decimals of a quote (``pip_size`` in tick messages)."""
        return max(0, round(-math.log10(self.pip)))


def _synthetic(symbol: str, name: str, pip: float, start: float, vol: float, order: int) -> Symbol:
    return Symbol(
        symbol=symbol,
        display_name=name,
        market="synthetic_index",
        market_display_name="Derived",
        submarket="random_index",
        submarket_display_name="Continuous Indices",
        pip=pip,
        start_quote=start,
        volatility=vol,
        is_open=True,
        display_order=order,
    )


SYMBOLS: dict[str, Symbol] = {
    s.symbol: s
    for s in (
        _synthetic("R_10", "Volatility 10 Index", 0.001, 6543.21, 0.10, 1),
        _synthetic("R_25", "Volatility 25 Index", 0.001, 2345.678, 0.25, 2),
        _synthetic("R_50", "Volatility 50 Index", 0.0001, 271.8108, 0.50, 3),
        _synthetic("R_75", "Volatility 75 Index", 0.0001, 43210.1234, 0.75, 4),
        _synthetic("R_100", "Volatility 100 Index", 0.01, 1417.65, 1.00, 5),
        Symbol(
            symbol="frxEURUSD",
            display_name="EUR/USD",
            market="forex",
            market_display_name="Forex",
            submarket="major_pairs",
            submarket_display_name="Major Pairs",
            pip=0.00001,
            start_quote=1.08512,
            volatility=0.08,
            is_open=False,
            display_order=6,
        ),
    )
}

#: Granularities that ``ticks_history`` accepts for candles (seconds).
GRANULARITIES = (60, 120, 180, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)

_SECONDS_PER_YEAR = 365 * 24 * 3600


class Market:
    """Current quotes of every symbol, moved by a seeded random walk.

    Args:
        seed: seed of the random walk (None: not reproducible).
    """

    def __init__(self, seed: int | None = None) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self.quotes: dict[str, float] = {s.symbol: s.start_quote for s in SYMBOLS.values()}
        self.epochs: dict[str, int] = {s.symbol: 0 for s in SYMBOLS.values()}

    def step(self, symbol: str, epoch: int) -> float:
        """Move ``symbol`` one tick (about one second of its volatility) and return the quote."""
        info = SYMBOLS[symbol]
        sigma = info.volatility / math.sqrt(_SECONDS_PER_YEAR)
        quote = self.quotes[symbol] * math.exp(sigma * self._rng.gauss(0.0, 1.0))
        quote = round(quote, info.pip_size)
        self.quotes[symbol] = quote
        self.epochs[symbol] = epoch
        return quote

    def tick(self, symbol: str, epoch: int, stream_id: str) -> dict[str, Any]:
        """The ``tick`` object of a tick message for the current quote of ``symbol``."""
        info = SYMBOLS[symbol]
        quote = self.quotes[symbol]
        spread = info.pip * 10
        return {
            "ask": round(quote + spread, info.pip_size),
            "bid": round(quote - spread, info.pip_size),
            "epoch": epoch,
            "id": stream_id,
            "pip_size": info.pip_size,
            "quote": quote,
            "symbol": symbol,
        }

    def _history_rng(self, symbol: str, end: int) -> random.Random:
        return random.Random(f"{self._seed}:{symbol}:{end}")

    def history(
        self, symbol: str, start: int, end: int, count: int
    ) -> tuple[list[float], list[int]]:
        """Past ticks, one per second, in ``[start, end]``, the last ``count`` of them.

        The walk runs backwards from the current quote, so the history joins the live stream.
        """
        info = SYMBOLS[symbol]
        first = max(start, end - count + 1)
        times = list(range(first, end + 1)) if end >= first else []
        rng = self._history_rng(symbol, end)
        sigma = info.volatility / math.sqrt(_SECONDS_PER_YEAR)
        quote = self.quotes[symbol]
        prices: list[float] = []
        for _ in times:
            prices.append(round(quote, info.pip_size))
            quote *= math.exp(sigma * rng.gauss(0.0, 1.0))
        prices.reverse()
        return prices, times

    def candles(
        self, symbol: str, start: int, end: int, count: int, granularity: int
    ) -> list[dict[str, Any]]:
        """Past candles of ``granularity`` seconds whose open time is in ``[start, end]``."""
        info = SYMBOLS[symbol]
        last_open = end - end % granularity
        first_open = max(start - start % granularity, last_open - (count - 1) * granularity)
        opens = list(range(first_open, last_open + 1, granularity)) if last_open >= start else []
        rng = self._history_rng(symbol, last_open * 7 + granularity)
        sigma = info.volatility * math.sqrt(granularity / _SECONDS_PER_YEAR)
        close = self.quotes[symbol]
        out: list[dict[str, Any]] = []
        for epoch in reversed(opens):
            open_ = close * math.exp(-sigma * rng.gauss(0.0, 1.0))
            high = max(open_, close) * (1 + abs(rng.gauss(0.0, sigma / 2)))
            low = min(open_, close) * (1 - abs(rng.gauss(0.0, sigma / 2)))
            digits = info.pip_size
            out.append(
                {
                    "close": round(close, digits),
                    "epoch": epoch,
                    "high": round(high, digits),
                    "low": round(low, digits),
                    "open": round(open_, digits),
                }
            )
            close = open_
        out.reverse()
        return out


def active_symbols(market: Market, style: str) -> list[dict[str, Any]]:
    """The ``active_symbols`` list, ``brief`` or ``full``."""
    out: list[dict[str, Any]] = []
    for info in SYMBOLS.values():
        item: dict[str, Any] = {
            "display_name": info.display_name,
            "display_order": info.display_order,
            "exchange_is_open": 1 if info.is_open else 0,
            "is_trading_suspended": 0,
            "market": info.market,
            "market_display_name": info.market_display_name,
            "pip": info.pip,
            "subgroup": "synthetics" if info.market == "synthetic_index" else "none",
            "subgroup_display_name": "Synthetics" if info.market == "synthetic_index" else "None",
            "submarket": info.submarket,
            "submarket_display_name": info.submarket_display_name,
            "symbol": info.symbol,
            "symbol_type": "stockindex" if info.market == "synthetic_index" else "forex",
        }
        if style == "full":
            epoch = market.epochs[info.symbol]
            item.update(
                {
                    "allow_forward_starting": 0,
                    "delay_amount": 0,
                    "exchange_name": "RANDOM" if info.is_open else "FOREX",
                    "intraday_interval_minutes": 1,
                    "quoted_currency_symbol": "" if info.is_open else "USD",
                    "spot": market.quotes[info.symbol],
                    "spot_age": "0",
                    "spot_percentage_change": "0.00",
                    "spot_time": str(epoch),
                }
            )
        out.append(item)
    return out


def format_quote(symbol: str, value: float) -> str:
    """A quote as Deriv shows it in strings: with exactly ``pip_size`` decimals."""
    return f"{value:.{SYMBOLS[symbol].pip_size}f}"
