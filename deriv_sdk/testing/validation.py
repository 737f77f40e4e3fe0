"""Validation of requests against Deriv's official ``send.json`` schemas.

The schemas of the calls the server implements are shipped as package data in
``deriv_sdk/testing/schemas/<call>/send.json`` (byte-identical copies of
deriv-com/deriv-api-docs ``config/v3``). They are JSON Schema draft-04 with two extra
keywords that this module reads: ``auth_required`` on the schema and ``sensitive`` on a
field (never echoed back).

Only the calls listed in :data:`IMPLEMENTED` are validated. A request naming any other call is
answered ``UnrecognisedRequest`` *before* validation, so the PCRE patterns that some other
calls' schemas use (``\\p{L}``, which Python's :mod:`re` cannot compile) never matter here.
"""

from __future__ import annotations

import json
import threading
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

#: The calls the server implements, i.e. whose ``send.json`` ships with the package.
IMPLEMENTED: frozenset[str] = frozenset(
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
)

NOT_SHOWN = "<not shown>"

_lock = threading.Lock()


@cache
def send_schema(call: str) -> dict[str, Any]:
    """Return the official ``send.json`` of ``call`` (one of :data:`IMPLEMENTED`)."""
    if call not in IMPLEMENTED:
        raise KeyError(call)
    text = (resources.files(__package__) / "schemas" / call / "send.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(call: str) -> Any:
    return jsonschema.Draft4Validator(send_schema(call))


def find_call(request: dict[str, Any]) -> str | None:
    """Return the call a request names: the first implemented key, else the first key.

    A request names its call by one "method" key (``{"ticks": "R_50"}``). The envelope
    fields ``req_id``, ``passthrough``, ``subscribe`` and ``loginid`` never name a call.
    Returns None for a request with no other key at all.
    """
    for key in request:
        if key in IMPLEMENTED:
            return key
    for key in request:
        if key not in ("req_id", "passthrough", "subscribe", "loginid"):
            return key
    return None


def validate(call: str, request: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """Validate ``request`` against the ``send.json`` of ``call``.

    Returns:
        None when the request is valid, else ``(message, details)`` in Deriv's style:
        ``message`` like ``"Input validation failed: Properties not allowed: foo."`` and
        ``details`` mapping each offending field to a reason.
    """
    with _lock:  # lru_cache building the validator is not atomic; validating is cheap
        validator = _validator(call)
    errors = sorted(validator.iter_errors(request), key=lambda e: list(e.path))
    if not errors:
        return None
    details: dict[str, str] = {}
    extra: list[str] = []
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
        else:
            field = ".".join(str(p) for p in error.path) or call
            details.setdefault(field, _reason(error))
    if extra:
        message = f"Input validation failed: Properties not allowed: {', '.join(extra)}."
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


def auth_required(call: str) -> bool:
    """Whether ``call`` needs an authorized connection (``auth_required`` of its schema)."""
    return bool(send_schema(call).get("auth_required"))


def mask_sensitive(call: str | None, request: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``request`` for ``echo_req``: sensitive fields as ``"<not shown>"``."""
    if call is None or call not in IMPLEMENTED:
        return dict(request)
    props = send_schema(call).get("properties", {})
    return {
        key: NOT_SHOWN if isinstance(props.get(key), dict) and props[key].get("sensitive") else val
        for key, val in request.items()
    }
