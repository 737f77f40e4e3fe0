"""Where Deriv's schemas are wrong or looser than what the live server sends, ``gen_api.py``
types what the server really sends. Each fix below changes the (in-memory) schema before
generation, appends a ``deriv_sdk:`` sentence to the description of what it changed (so the
generated docstring of that field says so) and a note to the call (so the method's docstring
says so). Sources: shared/deriv-api/PROTOCOL.md and NEW-API.md, and Deriv's example messages.

The fixes only add keys or widen types: a response that matches Deriv's schema still matches
the generated type. Request schemas are left as Deriv wrote them (strict when sending).
"""

from __future__ import annotations

import copy
from typing import Any

from gen_api_schema import Call

MARK = "deriv_sdk:"


def fix_v3(calls: list[Call]) -> None:
    """The fixes for Deriv's v3 (Legacy) API."""
    by_name = {call.name: call for call in calls}
    _ticks_history_streams(by_name["ticks_history"], by_name["ticks"])
    for call in calls:
        _top_level_passthrough(call)
        _object_items(call, call.response)


#: Said in ``OptionsAPI``'s docstring: true of every call.
OPTIONS_NOTES = (
    "Every response's `echo_req` may be missing: Deriv's schemas require it, but its "
    "comparison pages say it became optional and its examples leave it out.",
)


def fix_options(calls: list[Call]) -> None:
    """The fixes for Deriv's new (Options) API."""
    by_name = {call.name: call for call in calls}
    _ticks_history_streams(by_name["ticks_history"], by_name["ticks"])
    for call in calls:
        _top_level_passthrough(call)
        _echo_req_optional(call)
    _proposal_money(by_name["proposal"])
    _open_contract_money(by_name["proposal_open_contract"])


def _note(schema: dict[str, Any], text: str) -> None:
    description = schema.get("description", "").rstrip()
    schema["description"] = f"{description} ({MARK} {text})" if description else f"{MARK} {text}"


def _ticks_history_streams(history: Call, ticks: Call) -> None:
    """PROTOCOL.md section 2 and 9: the messages after the first of a ``ticks_history``
    subscription are ``msg_type`` ``tick`` (style ticks) or ``ohlc`` (style candles), but the
    response schema lists those msg_types without defining either payload. The ``tick`` is
    the ``ticks`` call's; ``ohlc`` is typed from Deriv's examples (SmartCharts' fixture and
    shared/deriv-api/examples/ticks_history.ohlc_stream.json), whose prices are strings."""
    props = history.response["properties"]
    tick = copy.deepcopy(ticks.response["properties"]["tick"])
    _note(tick, "not in Deriv's schema: the stream messages of style `ticks` carry it")
    props["tick"] = tick
    price = "the price as a string with `pip_size` decimals, unlike the numbers of `candles`"
    props["ohlc"] = {
        "description": (
            "The candle being built, in the stream messages of style `candles` "
            f"({MARK} not in Deriv's schema; typed from Deriv's example messages)"
        ),
        "type": "object",
        "properties": {
            "close": {"description": f"Close price: {price}", "type": "string"},
            "epoch": {"description": "Epoch time of the tick", "type": "integer"},
            "granularity": {"description": "Candle length in seconds", "type": "integer"},
            "high": {"description": f"High price: {price}", "type": "string"},
            "id": {"description": "The subscription id", "type": "string"},
            "low": {"description": f"Low price: {price}", "type": "string"},
            "open": {"description": f"Open price: {price}", "type": "string"},
            "open_time": {"description": "Epoch time of the candle's start", "type": "integer"},
            "pip_size": {"description": "Decimal places of the prices", "type": "number"},
            "symbol": {"description": "Symbol", "type": "string"},
        },
    }
    history.notes.append(
        "The stream messages carry `tick` (style `ticks`) or `ohlc` (style `candles`), which "
        "Deriv's schema lists as msg_types but does not define; `ohlc` prices are strings."
    )


def _object_items(call: Call, schema: Any) -> None:
    """An object schema that lists its fields under ``items`` (v3 ``mt5_login_list``'s
    ``eligible_to_migrate``) means ``properties``: read so, the fields get types."""
    if isinstance(schema, list):
        for item in schema:
            _object_items(call, item)
        return
    if not isinstance(schema, dict):
        return
    object_items = schema.get("type") == "object" and isinstance(schema.get("items"), dict)
    if object_items and "properties" not in schema:
        schema["properties"] = schema.pop("items")
        _note(schema, "Deriv's schema lists these fields under `items`")
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            for sub in value.values():
                _object_items(call, sub)
        elif isinstance(value, (dict, list)):
            _object_items(call, value)


def _top_level_passthrough(call: Call) -> None:
    """PROTOCOL.md section 2: ``passthrough`` comes back in ``echo_req`` and also as a
    top-level field, which no response schema declares."""
    props = call.response["properties"]
    if "passthrough" not in props:
        props["passthrough"] = {
            "description": (
                f"The request's `passthrough`, when it had one ({MARK} the server also sends "
                "it at the top level, which Deriv's schema does not declare)"
            ),
            "type": "object",
        }


def _echo_req_optional(call: Call) -> None:
    """NEW-API.md 4.2: the new API's schemas require ``echo_req``, Deriv's comparison pages say
    it became optional, and the docs' own examples omit it."""
    required = call.response.get("required", [])
    if "echo_req" in required:
        required.remove("echo_req")
        _note(
            call.response["properties"]["echo_req"],
            "optional: the new API may leave it out, although its schema requires it",
        )


def _widen_to_string(schema: dict[str, Any]) -> None:
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    for extra in ("number", "string"):
        if extra not in types:
            types.append(extra)
    schema["type"] = sorted(types)
    _note(schema, "a number or a string: the server sends either")


def _proposal_money(call: Call) -> None:
    """NEW-API.md 4.4: per Deriv's comparison page only ``id`` of a new-API ``proposal`` is
    guaranteed, and ``ask_price``, ``payout`` and ``commission`` may be numbers or strings."""
    proposal = call.response["properties"]["proposal"]
    for name in ("ask_price", "payout", "commission"):
        _widen_to_string(proposal["properties"][name])
    proposal["required"] = ["id"]
    _note(proposal, "only `id` is guaranteed; Deriv's schema requires seven fields")
    call.notes.append(
        "`ask_price`, `payout` and `commission` may be numbers or strings, and only `id` is "
        "guaranteed (Deriv's schema: numbers, seven fields required)."
    )


def _open_contract_money(call: Call) -> None:
    """NEW-API.md 4.4: the new API's ``proposal_open_contract`` schema types the money and spot
    fields as strings; Deriv's comparison page calls them ``string | number``."""
    contract = call.response["properties"]["proposal_open_contract"]
    names = ("barrier", "bid_price", "buy_price", "current_spot", "payout", "profit", "sell_price")
    for name in names:
        _widen_to_string(contract["properties"][name])
    call.notes.append(
        "The money and spot fields (" + ", ".join(f"`{n}`" for n in names) + ") may be "
        "strings or numbers (Deriv's schema: strings)."
    )
