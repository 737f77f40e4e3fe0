"""The pure parts of LocalServer: the market walk, history, candles and contract pricing."""

from __future__ import annotations

import itertools

import pytest

from deriv_sdk.testing.accounts import make_accounts, price
from deriv_sdk.testing.envelope import ApiError
from deriv_sdk.testing.market import SYMBOLS, Market, active_symbols


def _walk(seed: int, steps: int) -> list[float]:
    market = Market(seed)
    return [market.step("R_50", 1_700_000_000 + i) for i in range(steps)]


def test_the_seed_makes_the_walk_reproducible() -> None:
    assert _walk(42, 50) == _walk(42, 50)
    assert _walk(42, 50) != _walk(43, 50)


def test_quotes_have_pip_size_decimals() -> None:
    market = Market(1)
    for symbol, info in SYMBOLS.items():
        quote = market.step(symbol, 1)
        assert round(quote, info.pip_size) == quote
        tick = market.tick(symbol, 1, "x" * 32)
        assert tick["bid"] < tick["quote"] < tick["ask"]


def test_history_ends_at_the_current_quote() -> None:
    market = Market(5)
    market.step("R_100", 1000)
    prices, times = market.history("R_100", 0, 1000, 10)
    assert times == list(range(991, 1001))
    assert prices[-1] == market.quotes["R_100"]
    assert market.history("R_100", 995, 1000, 100)[1] == list(range(995, 1001))


def test_candles_are_aligned_and_consistent() -> None:
    market = Market(5)
    candles = market.candles("R_10", 0, 10_000, 5, 60)
    assert [c["epoch"] for c in candles] == list(range(9720, 10_000, 60))
    for candle in candles:
        assert candle["low"] <= min(candle["open"], candle["close"])
        assert candle["high"] >= max(candle["open"], candle["close"])
    assert candles[-1]["close"] == market.quotes["R_10"]
    for a, b in itertools.pairwise(candles):
        assert a["close"] == b["open"]


def test_active_symbols_brief_has_one_closed_market() -> None:
    brief = active_symbols(Market(1), "brief")
    assert [s["symbol"] for s in brief if not s["exchange_is_open"]] == ["frxEURUSD"]
    assert "spot" not in brief[0]


def _params(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "contract_type": "CALL",
        "currency": "USD",
        "symbol": "R_100",
        "amount": 10,
        "basis": "payout",
        "duration": 5,
        "duration_unit": "t",
    }
    return {**base, **extra}


def test_at_the_money_price_is_about_half_the_payout() -> None:
    market = Market(1)
    call = price(_params(), market, 1000)
    put = price(_params(contract_type="PUT"), market, 1000)
    assert call.payout == put.payout == 10
    assert 5.0 < call.ask_price < 5.5 and 5.0 < put.ask_price < 5.5
    stake = price(_params(basis="stake"), market, 1000)
    assert stake.ask_price == 10 and 18 < stake.payout < 20


def test_a_higher_barrier_makes_a_call_cheaper() -> None:
    market = Market(1)
    atm = price(_params(duration=60, duration_unit="s"), market, 1000)
    otm = price(_params(duration=60, duration_unit="s", barrier="+5"), market, 1000)
    assert otm.ask_price < atm.ask_price


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"symbol": "frxEURUSD"}, "MarketIsClosed"),
        ({"symbol": "R_999"}, "InvalidSymbol"),
        ({"contract_type": "DIGITEVEN"}, "OfferingsValidationError"),
        ({"duration": 11}, "ContractValidationError"),
        ({"barrier": "+abc"}, "ContractValidationError"),
    ],
)
def test_pricing_errors(extra: dict[str, object], code: str) -> None:
    with pytest.raises(ApiError) as info:
        price(_params(**extra), Market(1), 1000)
    assert info.value.code == code


def test_accounts_from_a_list_and_a_dict() -> None:
    accounts = make_accounts(["a", "b"])
    assert {a.balance for a in accounts.values()} == {10000.0}
    assert accounts["a"].loginid != accounts["b"].loginid
    custom = make_accounts({"c": {"loginid": "CR42", "currency": "EUR", "balance": 7}})
    assert (custom["c"].loginid, custom["c"].currency, custom["c"].balance) == ("CR42", "EUR", 7)
    assert custom["c"].is_virtual == 0
