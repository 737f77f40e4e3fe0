"""Helpers of the typed-call tests (tests/test_api_*.py): the vendored schemas read directly
(independently of tools/gen_api.py), a validator that understands Deriv's PCRE patterns, the
smallest valid request of a call, and a run-time check of a value against a generated type.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import regex

from deriv_sdk.api._compat import NotRequired

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "deriv_sdk" / "testing" / "schemas"
ENVELOPE = {"req_id", "passthrough", "subscribe"}


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def v3_calls() -> dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """call -> (send.json, receive.json, example.json), for every folder of schemas/v3/."""
    calls = {}
    for folder in sorted((SCHEMAS / "v3").iterdir()):
        if (folder / "send.json").exists():
            files = (read(folder / f"{name}.json") for name in ("send", "receive", "example"))
            calls[folder.name] = tuple(files)
    return calls  # type: ignore[return-value]


def options_calls() -> dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """call -> (request, response, {}), for every WebSocket call of schemas/options/: a
    ``<call>_request.schema.json`` whose method key is the call's name (the REST endpoints'
    files describe ``headers``/``path``/``body`` instead)."""
    calls = {}
    for path in sorted((SCHEMAS / "options").glob("*_request.schema.json")):
        name = path.name.removesuffix("_request.schema.json")
        request = read(path)
        if name in request.get("properties", {}):
            response = read(path.with_name(f"{name}_response.schema.json"))
            calls[name] = (request, response, {})
    return calls


# -- validation with Deriv's patterns -----------------------------------------------------


def _compile(pattern: str) -> Any:
    # PCRE's \x{b0} is \u00b0 for the regex module (shared/deriv-api/README.md).
    return regex.compile(regex.sub(r"\\x\{([0-9a-fA-F]{1,4})\}", r"\\u00\1", pattern))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if isinstance(instance, str) and not _compile(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {"pattern": _pattern})


def errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every way ``instance`` breaks ``schema`` (draft-04, Deriv's PCRE patterns understood)."""
    return [f"{list(e.path)}: {e.message}" for e in Validator(schema).iter_errors(instance)]


# -- the smallest valid request -----------------------------------------------------------

#: Strings tried, in order, for a required string field without an enum (after the value
#: of the call's example.json): the first that the field's pattern and lengths accept wins.
STRINGS = (
    "R_100", "USD", "latest", "today", "CR90000000", "1", "abcd", "abcdefgh",
    "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "Abcd1234!", "+0.5", "2026-01-01", "a@b.co",
    "ab", "en", "a", "12345678", "https://example.com",
)  # fmt: skip


def smallest_request(call: str, schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    """The call's required fields, each with a value its schema accepts.

    Raises:
        AssertionError: No valid value was found (extend :data:`STRINGS`).
    """
    flat = inline(schema, schema)
    request = {
        name: sample(flat["properties"][name], example.get(name))
        for name in schema.get("required", [])
    }
    problems = errors(schema, request)
    assert not problems, f"{call}: no valid smallest request: {problems}"
    return request


def inline(schema: Any, root: dict[str, Any]) -> Any:
    """``schema`` with its local ``$ref``s replaced by their targets."""
    if isinstance(schema, list):
        return [inline(item, root) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return inline(target, root)
    return {key: inline(value, root) for key, value in schema.items()}


def sample(schema: dict[str, Any], hint: Any = None) -> Any:
    """A value that ``schema`` accepts (its required parts only)."""
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("oneOf", "anyOf"):
        if key in schema:
            for branch in schema[key]:
                value = sample({**{k: v for k, v in schema.items() if k != key}, **branch}, hint)
                if not errors(schema, value):
                    return value
    kinds = schema.get("type", "object")
    kinds = [kinds] if isinstance(kinds, str) else [k for k in kinds if k != "null"] or ["null"]
    kind = kinds[0]
    if kind == "string":
        for candidate in (hint, *STRINGS):
            if isinstance(candidate, str) and not errors(schema, candidate):
                return candidate
        raise AssertionError(f"no sample string for {schema}")
    if kind in ("integer", "number"):
        low = schema.get("minimum", 1)
        if schema.get("exclusiveMinimum"):
            low += 1
        return min(low, schema.get("maximum", low))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        items = schema.get("items", {})
        count = max(1, schema.get("minItems", 0))
        if "enum" in items:
            return items["enum"][:count]
        return [sample(items) for _ in range(count)]
    props = schema.get("properties", {})
    return {name: sample(props.get(name, {})) for name in schema.get("required", [])}


def method_arguments(
    call: str, method: Callable[..., Any], request: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments of the typed method that send ``request``."""
    import inspect

    params = inspect.signature(method).parameters
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, value in request.items():
        if name in ENVELOPE:
            continue
        if name == call:
            if name in params and params[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
                args.append(value)
            else:
                assert value == 1, f"{call}: the call's own field is filled in only when it is 1"
            continue
        kwargs[name if name in params else name + "_"] = value
    return args, kwargs


# -- a value against a generated TypedDict ------------------------------------------------


def conformance(value: Any, tp: Any, path: str = "$") -> list[str]:
    """Where ``value`` (a decoded JSON message) does not fit the type ``tp`` of the generated
    modules: unknown or missing keys, wrong scalar types, values outside a Literal."""
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return []
    if typing.is_typeddict(tp):
        return _typeddict(value, tp, path)
    if origin in (typing.Union, types.UnionType):
        results = [conformance(value, arg, path) for arg in typing.get_args(tp)]
        return [] if any(not r for r in results) else min(results, key=len)
    if origin is typing.Literal:
        return [] if value in typing.get_args(tp) else [f"{path}: {value!r} not in {tp}"]
    if tp is type(None):
        return [] if value is None else [f"{path}: {value!r} is not null"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__} is not a list"]
        (item,) = typing.get_args(tp)
        return [e for i, v in enumerate(value) for e in conformance(v, item, f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__} is not an object"]
        _, item = typing.get_args(tp)
        return [e for k, v in value.items() for e in conformance(v, item, f"{path}.{k}")]
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    return [] if ok else [f"{path}: {value!r} is not {getattr(tp, '__name__', tp)}"]


def _typeddict(value: Any, tp: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: {type(value).__name__} is not {tp.__name__}"]
    hints = typing.get_type_hints(tp, include_extras=True)
    problems = []
    for key, hint in hints.items():
        optional = typing.get_origin(hint) is NotRequired
        inner = typing.get_args(hint)[0] if optional else hint
        if key in value:
            problems += conformance(value[key], inner, f"{path}.{key}")
        elif not optional:
            problems.append(f"{path}: required key {key!r} missing ({tp.__name__})")
    problems += [f"{path}: key {k!r} not in {tp.__name__}" for k in value if k not in hints]
    return problems
