"""The v3 calls (:data:`HANDLERS`), and those the new API shares with it: ping, time, ticks,
ticks_history, forget, forget_all, logout (the account calls are in :mod:`.trading`).

Every handler runs on the connection's handler thread, takes the server's
:class:`~deriv_sdk.testing.state.ServerState`, runs under its lock, and
returns the reply (a dict) or raises :class:`~deriv_sdk.testing.envelope.ApiError`. Stream
messages are queued on the session; nothing here blocks on a socket.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from deriv_sdk.testing import trading
from deriv_sdk.testing.envelope import ApiError, reply
from deriv_sdk.testing.market import GRANULARITIES, SYMBOLS, active_symbols, format_quote
from deriv_sdk.testing.session import Session, Stream, stream_key
from deriv_sdk.testing.state import ServerState

Handler = Callable[[ServerState, Session, dict[str, Any]], "dict[str, Any] | None"]


def ping(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    return reply("ping", request, "ping", "pong")


def server_time(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    return reply("time", request, "time", int(time.time()))


def _website_status(
    state: ServerState, session: Session, request: dict[str, Any]
) -> dict[str, Any]:
    limits = state.rate_limits

    def per_minute(call: str, default: int) -> int:
        return limits.get(call, default)

    status = {
        "api_call_limits": {
            "max_proposal_subscription": {
                "applies_to": "subscribing to proposal concurrently",
                "max": 5,
            },
            "max_requestes_general": {
                "applies_to": "rest of calls",
                "hourly": 14400,
                "minutely": 180,
            },
            "max_requests_outcome": {
                "applies_to": "portfolio, statement and proposal",
                "hourly": 1500,
                "minutely": per_minute("portfolio", 25),
            },
            "max_requests_pricing": {
                "applies_to": "proposal and proposal_open_contract",
                "hourly": 3600,
                "minutely": per_minute("proposal", 80),
            },
        },
        "broker_codes": ["CR", "MF", "VRTC"],
        "clients_country": "id",
        "currencies_config": {
            "USD": {
                "fractional_digits": 2,
                "is_deposit_suspended": 0,
                "is_suspended": 0,
                "is_withdrawal_suspended": 0,
                "name": "US Dollar",
                "stake_default": 10,
                "transfer_between_accounts": {
                    "fees": {"USD": 0},
                    "limits": {"max": 10000, "min": 1},
                },
                "type": "fiat",
            }
        },
        "site_status": "up",
        "supported_languages": ["EN"],
        "terms_conditions_version": "Version 4.2.0 2020-08-07",
    }
    sub = None
    if request.get("subscribe") == 1:
        sub = _subscribe(session, "website_status", request, "website_status", "website_status")
    return reply("website_status", request, "website_status", status, sub)


def _active_symbols(
    state: ServerState, session: Session, request: dict[str, Any]
) -> dict[str, Any]:
    items = active_symbols(state.market, request["active_symbols"])
    return reply("active_symbols", request, "active_symbols", items)


def _subscribe(
    session: Session,
    call: str,
    request: dict[str, Any],
    kind: str,
    msg_type: str,
    key: str | None = None,
    symbol: str | None = None,
    data: dict[str, Any] | None = None,
    what: str | None = None,
) -> str:
    """Register a stream; ``AlreadySubscribed`` when an identical one exists."""
    key = key or stream_key(call, request)
    if key in session.stream_keys:
        raise ApiError("AlreadySubscribed", f"You are already subscribed to {what or call}.")
    stream = Stream(session.new_id(), kind, call, request, key, msg_type, symbol, data or {})
    session.add_stream(stream)
    return stream.id


def open_symbol(symbol: str) -> None:
    info = SYMBOLS.get(symbol)
    if info is None:
        raise ApiError("InvalidSymbol", f"Symbol {symbol} invalid.")
    if not info.is_open:
        raise ApiError("MarketIsClosed", "This market is presently closed.")


def ticks(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    symbols = request["ticks"] if isinstance(request["ticks"], list) else [request["ticks"]]
    for symbol in symbols:
        open_symbol(symbol)
    # Deriv streams ticks even without "subscribe" (its docs say ticks subscribes itself).
    messages = []
    for symbol in symbols:
        sub = _subscribe(
            session, "ticks", request, "ticks", "tick", f"ticks:{symbol}", symbol, what=symbol
        )
        tick = state.market.tick(symbol, state.market.epochs[symbol] or int(time.time()), sub)
        messages.append(reply("ticks", request, "tick", tick, sub))
    for extra in messages[1:]:
        session.send(extra)
    return messages[0]


def ticks_history(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    symbol = request["ticks_history"]
    info = SYMBOLS.get(symbol)
    if info is None:
        raise ApiError("InvalidSymbol", f"Symbol {symbol} invalid.")
    now = int(time.time())
    end = now if request["end"] == "latest" else min(now, int(request["end"]))
    count = max(1, min(int(request.get("count", 1000)), 5000))
    start = int(request.get("start", end - 86400))
    if start > end:
        raise ApiError("InvalidStartEnd", "Start time is later than end time.")
    style = request.get("style", "ticks")
    granularity = int(request.get("granularity", 60))
    if style == "candles" and granularity not in GRANULARITIES:
        raise ApiError("InvalidGranularity", "Granularity is not valid.")
    sub = None
    if request.get("subscribe") == 1:
        if not info.is_open:
            raise ApiError("MarketIsClosed", "This market is presently closed.")
        if style == "candles":
            sub = _subscribe(
                session,
                "ticks_history",
                request,
                "candles",
                "ohlc",
                f"candles:{symbol}:{granularity}",
                symbol,
                {"granularity": granularity},
                symbol,
            )
        else:
            sub = _subscribe(
                session,
                "ticks_history",
                request,
                "ticks",
                "tick",
                f"ticks:{symbol}",
                symbol,
                what=symbol,
            )
    if style == "candles":
        candles = state.market.candles(symbol, start, end, count, granularity)
        if sub is not None and candles:
            last = candles[-1]
            session.streams[sub].data.update(candle=dict(last))
        message = reply("ticks_history", request, "candles", candles, sub)
    else:
        prices, times = state.market.history(symbol, start, end, count)
        message = reply(
            "ticks_history", request, "history", {"prices": prices, "times": times}, sub
        )
    message["pip_size"] = info.pip_size
    return message


def market_tick(state: ServerState, symbol: str, epoch: int, quote: float) -> None:
    """Send the tick and candle stream messages of ``symbol`` (scheduler, under the lock)."""
    for session in state.sessions_snapshot():
        for stream in list(session.streams.values()):
            if stream.symbol != symbol:
                continue
            if stream.kind == "ticks":
                tick = state.market.tick(symbol, epoch, stream.id)
                session.send(reply(stream.call, stream.request, "tick", tick, stream.id))
            elif stream.kind == "candles":
                session.send(_ohlc(stream, symbol, epoch, quote))


def _ohlc(stream: Stream, symbol: str, epoch: int, quote: float) -> dict[str, Any]:
    granularity = stream.data["granularity"]
    open_time = epoch - epoch % granularity
    candle = stream.data.get("candle")
    if candle is None or candle["epoch"] != open_time:
        candle = {"epoch": open_time, "open": quote, "high": quote, "low": quote, "close": quote}
    candle.update(high=max(candle["high"], quote), low=min(candle["low"], quote), close=quote)
    stream.data["candle"] = candle
    ohlc = {
        "close": format_quote(symbol, candle["close"]),
        "epoch": epoch,
        "granularity": granularity,
        "high": format_quote(symbol, candle["high"]),
        "id": stream.id,
        "low": format_quote(symbol, candle["low"]),
        "open": format_quote(symbol, candle["open"]),
        "open_time": open_time,
        "pip_size": SYMBOLS[symbol].pip_size,
        "symbol": symbol,
    }
    return reply(stream.call, stream.request, "ohlc", ohlc, stream.id)


def forget(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    stream = session.remove_stream(request["forget"])
    if stream is not None:
        state.proposals.pop(stream.id, None)
    return reply("forget", request, "forget", 1 if stream is not None else 0)


def forget_all(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    kinds = request["forget_all"]
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    ids = [s.id for s in list(session.streams.values()) if s.kind in kinds]
    for stream_id in ids:
        session.remove_stream(stream_id)
        state.proposals.pop(stream_id, None)
    return reply("forget_all", request, "forget_all", ids)


def _authorize(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    account = state.accounts.get(request["authorize"])
    if account is None:
        raise ApiError("InvalidToken", "The token is invalid.")
    session.account = account
    return reply("authorize", request, "authorize", account.authorize_payload())


def logout(state: ServerState, session: Session, request: dict[str, Any]) -> dict[str, Any]:
    session.account = None
    for stream in list(session.streams.values()):
        if stream.kind in ("balance", "transaction", "proposal_open_contract"):
            session.remove_stream(stream.id)
    return reply("logout", request, "logout", 1)


HANDLERS: dict[str, Handler] = {
    "active_symbols": _active_symbols,
    "authorize": _authorize,
    "balance": trading.balance,
    "buy": trading.buy,
    "forget": forget,
    "forget_all": forget_all,
    "logout": logout,
    "ping": ping,
    "portfolio": trading.portfolio,
    "proposal": trading.proposal,
    "proposal_open_contract": trading.proposal_open_contract,
    "sell": trading.sell,
    "ticks": ticks,
    "ticks_history": ticks_history,
    "time": server_time,
    "transaction": trading.transaction,
    "website_status": _website_status,
}
