"""Reconnect delays: exponential backoff with full jitter (pure; randomness injectable)."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays for successive reconnect attempts.

    Attempt ``n`` (from 0) waits a uniformly random time in ``[0, min(maximum, initial *
    2**n)]`` ("full jitter": spreads the reconnects of many clients after an outage).

    Args:
        initial: The cap of the first delay, in seconds.
        maximum: The cap of every delay.
        rand: Returns a float in [0, 1); ``random.random`` by default (tests inject their own).
    """

    def __init__(
        self, initial: float, maximum: float, rand: Callable[[], float] | None = None
    ) -> None:
        if initial < 0 or maximum < 0:
            raise ValueError("reconnect delays must be >= 0")
        self.initial = initial
        self.maximum = max(maximum, initial)
        self._rand = rand or random.random
        self.attempt = 0

    def cap(self, attempt: int) -> float:
        """The upper bound of the delay before attempt ``attempt``."""
        # min() before the power would overflow for large attempt counts.
        return min(self.maximum, self.initial * 2.0 ** min(attempt, 64))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one attempt."""
        delay = self._rand() * self.cap(self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Starts again from the first delay (after a successful open)."""
        self.attempt = 0
