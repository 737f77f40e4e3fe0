"""The tick scheduler: one thread (``deriv_sdk-server-ticks``) that moves the market every
``tick_interval`` seconds and queues the messages of every stream (ticks, candles, proposals,
open contracts) on the sessions of both APIs.
"""

from __future__ import annotations

import logging
import time

from deriv_sdk.testing.handlers import market_tick
from deriv_sdk.testing.market import SYMBOLS
from deriv_sdk.testing.state import ServerState
from deriv_sdk.testing.trading import trading_tick

logger = logging.getLogger("deriv_sdk.testing")


def tick_loop(state: ServerState, interval: float) -> None:
    """Run until ``state.stopping`` is set (the body of the ``deriv_sdk-server-ticks`` thread).

    While the server is stalled the markets stand still. A scheduler that falls behind (a slow
    machine) skips ticks instead of bursting them.
    """
    next_at = time.monotonic()
    while True:
        if state.stopping.wait(max(0.0, next_at - time.monotonic())):
            return
        now = time.monotonic()
        next_at += interval
        if next_at < now:
            next_at = now + interval
        if state.stalled:
            continue
        epoch = int(time.time())
        try:
            with state.lock:
                for symbol, info in SYMBOLS.items():
                    if not info.is_open:
                        continue
                    quote = state.market.step(symbol, epoch)
                    market_tick(state, symbol, epoch, quote)
                    trading_tick(state, symbol, epoch, quote)
        except Exception:  # a bug: log it and keep the market alive
            logger.exception("LocalServer: tick failed")
