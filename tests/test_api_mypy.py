"""mypy --strict over small user programs of the typed calls: a correct one is clean, and each
mistake of the other is reported on its line with mypy's message for it.

One in-process run (``mypy.api``) over both files, with a cache in a temporary folder. Each
``# E: <mistake>`` comment names what must be reported on its line (``EXPECTED``); nothing
else may be.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)

GOOD = '''
"""A correct program using the typed calls."""

from __future__ import annotations

from deriv_sdk import Connection, Subscription
from deriv_sdk.api import LegacyAPI, OptionsAPI, options_types
from deriv_sdk.api.v3_types import ProposalOpenContractResponse, TicksResponse


def on_tick(message: TicksResponse) -> None:
    print(message["tick"]["quote"], message["tick"].get("symbol"))


def follow(message: ProposalOpenContractResponse) -> None:
    contract = message["proposal_open_contract"]
    if contract.get("is_sold"):
        print(contract["status"], contract["sell_price"])


def legacy(conn: Connection) -> None:
    api = LegacyAPI(conn)
    history = api.ticks_history("R_100", end="latest", count=10)
    prices: list[float] = history["history"]["prices"]
    print(prices[-1], api.time()["time"])
    sub: Subscription = api.ticks("R_100", listener=on_tick)
    sub.forget()
    account = api.authorize("a1-token")["authorize"]
    proposal = api.proposal(
        contract_type="CALL", currency=account["currency"], symbol="R_100", amount=10,
        basis="stake", duration=5, duration_unit="t",
    )["proposal"]
    bought = api.buy(proposal["id"], price=proposal["ask_price"])["buy"]
    api.proposal_open_contract(contract_id=bought["contract_id"], listener=follow, on_end=print)
    forgotten: list[str] = api.forget_all(["ticks", "proposal"], passthrough={"k": 1})["forget_all"]
    print(forgotten, api.transaction(listener=print).id)
    api.set_self_exclusion(max_balance=None, max_open_bets=3)


def options(conn: Connection) -> None:
    api = OptionsAPI(conn)
    quote = api.proposal(
        contract_type="CALL", currency="USD", underlying_symbol="R_100", amount=10,
        basis="stake", duration=5, duration_unit="t",
    )["proposal"]
    ask: float | str = quote["ask_price"]
    contract: options_types.ProposalOpenContractResponse = api.proposal_open_contract(
        contract_id=1
    )
    print(ask, contract["proposal_open_contract"]["bid_price"], api.balance()["balance"])
'''

BAD = '''
"""One mistake per marked line."""

from __future__ import annotations

from deriv_sdk import Connection
from deriv_sdk.api import LegacyAPI, OptionsAPI


def mistakes(conn: Connection) -> None:
    api = LegacyAPI(conn)
    api.statement(limt=10)  # E: misspelt keyword
    api.ticks_history("R_100", ende="latest")  # E: misspelt keyword, streaming call
    api.statement(limit="ten")  # E: wrong type
    api.sell(12345)  # E: missing required argument
    api.ticks_history("R_100")  # E: missing required argument, streaming call
    api.active_symbols("short")  # E: invalid enum value
    api.ticks_history("R_100", end="latest", style="candle")  # E: invalid enum, streaming call
    print(api.statement()["statment"])  # E: misspelt response key
    print(api.ticks("R_100")["tick"]["quot"])  # E: misspelt nested key
    api.ticks("R_100", listener=lambda m: print(m["tik"]))  # E: misspelt key in a listener
    OptionsAPI(conn).authorize("token")  # E: authorize on OptionsAPI
    OptionsAPI(conn).proposal(contract_type="CALL", currency="USD", symbol="R_100")  # E: v3 name
    api.transaction()  # E: stream without listener
'''

#: What mypy must say on each marked line of BAD (a regex searched in its message).
EXPECTED = {
    "misspelt keyword": 'Unexpected keyword argument "limt" for "statement" of "LegacyAPI"',
    "misspelt keyword, streaming call": (
        'Unexpected keyword argument "ende" for overloaded function "ticks_history"'
    ),
    "wrong type": (
        'Argument "limit" to "statement" of "LegacyAPI" has incompatible type "str"; '
        'expected "float \\| None"'
    ),
    "missing required argument": 'Missing named argument "price" for "sell" of "LegacyAPI"',
    "missing required argument, streaming call": (
        'No overload variant of "ticks_history" of "LegacyAPI" matches argument type "str"'
    ),
    "invalid enum value": (
        'Argument 1 to "active_symbols" of "LegacyAPI" has incompatible type '
        "\"Literal\\['short'\\]\"; expected \"Literal\\['brief', 'full'\\]\""
    ),
    "invalid enum, streaming call": (
        'No overload variant of "ticks_history" of "LegacyAPI" matches argument types '
        '"str", "str", "str"'
    ),
    "misspelt response key": 'TypedDict "StatementResponse" has no key "statment"',
    "misspelt nested key": 'TypedDict "TicksResponseTick" has no key "quot"',
    "misspelt key in a listener": 'TypedDict "TicksResponse" has no key "tik"',
    "authorize on OptionsAPI": '"OptionsAPI" has no attribute "authorize"',
    "v3 name": (
        'Unexpected keyword argument "symbol" for overloaded function "proposal" of "OptionsAPI"'
    ),
    "stream without listener": 'Missing named argument "listener" for "transaction"',
}


def test_mypy_reports_each_mistake_and_nothing_in_a_correct_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(textwrap.dedent(GOOD).lstrip())
    bad.write_text(textwrap.dedent(BAD).lstrip())
    monkeypatch.setenv("MYPYPATH", str(ROOT))  # this tree's deriv_sdk, however it is installed
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(tmp_path / "mypy-cache"),
            "--no-pretty", "--show-error-codes", "--no-error-summary", "--hide-error-context",
            str(good), str(bad),
        ]
    )  # fmt: skip
    assert stderr == ""
    reported: dict[tuple[str, int], list[str]] = {}
    for line in stdout.splitlines():
        found = re.match(r"(.+?):(\d+): error: (.*)$", line)
        if found:
            key = (Path(found[1]).name, int(found[2]))
            reported.setdefault(key, []).append(found[3])
    expected = {}
    for number, text in enumerate(bad.read_text().splitlines(), 1):
        if "# E: " in text:
            expected[("bad.py", number)] = EXPECTED[text.split("# E: ", 1)[1]]
    assert len(expected) == len(EXPECTED) == 13
    assert not [key for key in reported if key[0] == "good.py"], stdout
    for key, pattern in expected.items():
        assert any(re.search(pattern, m) for m in reported.get(key, [])), (key, pattern, stdout)
    assert set(reported) == set(expected), stdout
    assert status == 1
