"""deriv_sdk.backoff: exponential backoff with full jitter."""

from __future__ import annotations

import random

import pytest

from deriv_sdk.backoff import Backoff


def test_caps_double_up_to_the_maximum() -> None:
    backoff = Backoff(0.5, 10.0, rand=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert backoff.attempt == 8


def test_cap() -> None:
    backoff = Backoff(1.0, 30.0)
    assert [backoff.cap(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_full_jitter_within_zero_and_cap() -> None:
    rng = random.Random(42)
    backoff = Backoff(0.25, 5.0, rand=rng.random)
    delays = []
    for attempt in range(200):
        cap = backoff.cap(attempt)
        delay = backoff.next_delay()
        assert 0.0 <= delay <= cap <= 5.0
        delays.append(delay)
    assert len(set(delays)) > 100  # really random, not a constant
    assert max(delays) > 2.5  # and reaching towards the maximum


def test_jitter_uses_injected_rand() -> None:
    backoff = Backoff(2.0, 100.0, rand=lambda: 0.5)
    assert [backoff.next_delay() for _ in range(3)] == [1.0, 2.0, 4.0]
    zero = Backoff(2.0, 100.0, rand=lambda: 0.0)
    assert [zero.next_delay() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_default_rand_in_range() -> None:
    backoff = Backoff(1.0, 1.0)
    assert all(0.0 <= backoff.next_delay() <= 1.0 for _ in range(50))


def test_reset() -> None:
    backoff = Backoff(1.0, 60.0, rand=lambda: 1.0)
    for _ in range(5):
        backoff.next_delay()
    assert backoff.attempt == 5
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next_delay() == 1.0


@pytest.mark.parametrize("attempt", [64, 1023, 1024, 10**6, 10**100])
def test_huge_attempts_do_not_overflow(attempt: int) -> None:
    backoff = Backoff(0.5, 30.0, rand=lambda: 1.0)
    assert backoff.cap(attempt) == 30.0
    backoff.attempt = attempt
    assert backoff.next_delay() == 30.0


def test_maximum_below_initial_is_raised_to_initial() -> None:
    backoff = Backoff(5.0, 1.0, rand=lambda: 1.0)
    assert backoff.maximum == 5.0
    assert backoff.next_delay() == 5.0


def test_zero_delays() -> None:
    backoff = Backoff(0.0, 0.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(3)] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("initial", "maximum"), [(-1.0, 5.0), (1.0, -5.0), (-0.1, -0.1)])
def test_negative_is_value_error(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        Backoff(initial, maximum)
