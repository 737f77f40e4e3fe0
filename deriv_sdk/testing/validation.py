"""Validation of requests against Deriv's official request schemas, for both APIs.

The schemas ship as package data, byte-identical copies of Deriv's files:

- v3 (``legacy``): ``schemas/v3/<call>/{send,receive,example}.json`` for all 137 calls
  (deriv-com/deriv-api-docs ``config/v3``); requests are checked against ``send.json``;
- the new API (``options``): ``schemas/options/*.json``, the 95 files of
  deriv-com/deriv-api-schemas; requests are checked against ``<call>_request.schema.json``.

Both are JSON Schema draft-04 with Deriv's ``auth_required`` keyword on the schema and (v3)
``sensitive`` on a field (never echoed back).

Only the calls an API implements (:data:`IMPLEMENTED`) are validated. A request naming any
other call is answered ``UnrecognisedRequest`` *before* validation, so the PCRE patterns that
some other v3 schemas use (``\\p{L}``, which Python's :mod:`re` cannot compile) never matter.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

LEGACY = "legacy"
OPTIONS = "options"

#: The calls each API's server implements.
IMPLEMENTED: dict[str, frozenset[str]] = {
    LEGACY: frozenset(
        {
            "active_symbols",
            "authorize",
            "balance",
            "buy",
            "forget",
            "forget_all",
            "logout",
            "ping",
            "portfolio",
            "proposal",
            "proposal_open_contract",
            "sell",
            "ticks",
            "ticks_history",
            "time",
            "transaction",
            "website_status",
        }
    ),
    OPTIONS: frozenset(
        {
            "active_symbols",
            "balance",
            "buy",
            "contracts_for",
            "contracts_list",
            "forget",
            "forget_all",
            "logout",
            "ping",
            "portfolio",
            "profit_table",
            "proposal",
            "proposal_open_contract",
            "sell",
            "statement",
            "ticks",
            "ticks_history",
            "time",
            "trading_times",
            "transaction",
        }
    ),
}

NOT_SHOWN = "<not shown>"

#: Request fields that never name a call.
_ENVELOPE = ("req_id", "passthrough", "subscribe", "loginid")

_lock = threading.Lock()


def schema_text(api: str, name: str) -> str:
    """The text of a shipped schema file: ``name`` is ``<call>/send.json`` (v3) or
    ``<call>_request.schema.json`` (new API)."""
    folder = "v3" if api == LEGACY else "options"
    return (resources.files(__package__) / "schemas" / folder / name).read_text("utf-8")


@cache
def request_schema(api: str, call: str) -> dict[str, Any]:
    """The official request schema of ``call`` (one of ``IMPLEMENTED[api]``)."""
    if call not in IMPLEMENTED[api]:
        raise KeyError(call)
    name = f"{call}/send.json" if api == LEGACY else f"{call}_request.schema.json"
    schema: dict[str, Any] = json.loads(schema_text(api, name))
    return schema


@cache
def _validator(api: str, call: str) -> Any:
    return jsonschema.Draft4Validator(request_schema(api, call))


def find_call(api: str, request: dict[str, Any]) -> str | None:
    """Return the call a request names: the first implemented key, else the first key.

    A request names its call by one "method" key (``{"ticks": "R_50"}``). The envelope
    fields ``req_id``, ``passthrough``, ``subscribe`` and ``loginid`` never name a call.
    Returns None for a request with no other key at all.
    """
    for key in request:
        if key in IMPLEMENTED[api]:
            return key
    for key in request:
        if key not in _ENVELOPE:
            return key
    return None


def validate(api: str, call: str, request: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """Validate ``request`` against the request schema of ``call``.

    Returns:
        None when the request is valid, else ``(message, details)`` in Deriv's style:
        ``details`` maps each offending field to a reason; ``message`` is like
        ``"Input validation failed: Properties not allowed: foo."``, and on the new API a
        missing field gives ``"Missing required parameter underlying_symbol"`` (the text of
        Deriv's documented example).
    """
    with _lock:  # functools.cache building the validator is not atomic; validating is cheap
        validator = _validator(api, call)
    errors = sorted(validator.iter_errors(request), key=lambda e: list(e.path))
    if not errors:
        return None
    details: dict[str, str] = {}
    extra: list[str] = []
    missing: list[str] = []
    for error in errors:
        if error.validator == "additionalProperties":
            allowed = set(error.schema.get("properties", {}))
            names = sorted(k for k in error.instance if k not in allowed)
            extra.extend(names)
            for name in names:
                details[name] = "Properties not allowed"
        elif error.validator == "required":
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    details[name] = "Missing required field"
                    if not error.path:
                        missing.append(name)
        else:
            field = ".".join(str(p) for p in error.path) or call
            details.setdefault(field, _reason(error))
    if extra:
        message = f"Input validation failed: Properties not allowed: {', '.join(extra)}."
    elif missing and api == OPTIONS:
        message = f"Missing required parameter {', '.join(missing)}"
    else:
        message = f"Input validation failed: {', '.join(sorted(details))}"
    return message, details


def _reason(error: Any) -> str:
    kind = error.validator
    if kind == "type":
        return f"Expected {error.validator_value}"
    if kind == "enum":
        return "Not in enum list: " + ", ".join(str(v) for v in error.validator_value) + "."
    if kind == "pattern":
        return f"String does not match pattern {error.validator_value}"
    if kind in ("minimum", "maximum"):
        return f"Value out of range ({kind} {error.validator_value})"
    return str(error.message)


def auth_required(api: str, call: str) -> bool:
    """Whether ``call`` needs an account (``auth_required`` of its schema)."""
    return bool(request_schema(api, call).get("auth_required"))


def mask_sensitive(api: str, call: str | None, request: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``request`` for ``echo_req``: sensitive fields as ``"<not shown>"``."""
    if call is None or call not in IMPLEMENTED[api]:
        return dict(request)
    props = request_schema(api, call).get("properties", {})
    return {
        key: NOT_SHOWN if isinstance(props.get(key), dict) and props[key].get("sensitive") else val
        for key, val in request.items()
    }
