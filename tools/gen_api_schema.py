"""Schema side of ``tools/gen_api.py``: load the vendored schemas, apply the known fixes,
and prepare them for datamodel-code-generator (local ``$ref`` inlined, one title per object
model so that every generated class gets a stable, unique, path-derived name).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "deriv_sdk" / "testing" / "schemas"

#: Envelope fields of every request that are not parameters of a typed method.
ENVELOPE = ("req_id", "subscribe", "passthrough")


@dataclass
class Call:
    """One call of an API: its request and response schemas, and what the fixes changed."""

    name: str
    request: dict[str, Any]
    response: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # said in the method's docstring

    @property
    def camel(self) -> str:
        return camel(self.name)

    @property
    def streams(self) -> bool:
        return "subscribe" in self.request.get("properties", {})

    @property
    def must_stream(self) -> bool:
        return "subscribe" in self.request.get("required", [])


def camel(name: str) -> str:
    """``ticks_history`` -> ``TicksHistory``; ``p2p_order_info`` -> ``P2pOrderInfo``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part)


def load_v3() -> list[Call]:
    """Every call of ``schemas/v3/<call>/{send,receive}.json``, sorted by name."""
    calls = []
    for folder in sorted((SCHEMAS / "v3").iterdir()):
        if folder.is_dir():
            calls.append(
                Call(folder.name, _read(folder / "send.json"), _read(folder / "receive.json"))
            )
    return calls


def load_options() -> list[Call]:
    """Every WebSocket call of ``schemas/options/`` (``<call>_request.schema.json`` with its
    ``_response``). The REST endpoints' files (draft-07, ``headers``/``path``/``body``) and the
    OpenAPI file are not WebSocket calls."""
    calls = []
    for path in sorted((SCHEMAS / "options").glob("*_request.schema.json")):
        name = path.name[: -len("_request.schema.json")]
        request = _read(path)
        if "draft-04" not in request.get("$schema", "") or name not in request["properties"]:
            continue
        response = _read(path.with_name(f"{name}_response.schema.json"))
        calls.append(Call(name, request, response))
    return calls


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


# -- preparing a schema for the code generator --------------------------------------------


def inline_refs(schema: Any, root: dict[str, Any]) -> Any:
    """A copy of ``schema`` with every local ``$ref`` replaced by its target (Deriv's refs are
    few and never recursive); sibling keywords such as ``description`` are kept."""
    if isinstance(schema, list):
        return [inline_refs(item, root) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return {**inline_refs(target, root), **inline_refs(siblings, root)}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("definitions", "$defs"):
            continue  # inlined where referenced
        if key in ("properties", "patternProperties"):  # keys are field names, not keywords
            out[key] = {name: inline_refs(sub, root) for name, sub in value.items()}
        else:
            out[key] = inline_refs(value, root)
    return out


def name_models(schema: dict[str, Any], name: str, names: set[str]) -> dict[str, Any]:
    """A copy of ``schema`` in which every object schema with ``properties`` is titled with a
    path-derived class name (``TicksHistoryResponse`` + ``Candles`` + ``Item``) and every other
    title is dropped, so that the generator names each class after where it sits.

    Raises:
        ValueError: Two models would get the same name.
    """
    out = copy.deepcopy(schema)
    _name(out, name, names)
    return out


def _name(schema: Any, name: str, names: set[str]) -> None:
    if not isinstance(schema, dict):
        return
    schema.pop("title", None)
    if "properties" in schema and schema.pop("patternProperties", None):
        # A TypedDict cannot add typed keys by pattern (PEP 728 is not final): the declared
        # fields are typed, the others can be read after a cast.
        description = schema.get("description", "").rstrip()
        schema["description"] = f"{description} (Other keys, allowed by pattern, are not typed.)"
    if "properties" in schema:
        if name in names:
            raise ValueError(f"two generated classes would be named {name}")
        names.add(name)
        schema["title"] = name
        for key, sub in schema["properties"].items():
            _name(sub, name + camel(key), names)
    for key in ("patternProperties",):
        for index, sub in enumerate(schema.get(key, {}).values()):
            _name(sub, name + ("Value" if index == 0 else f"Value{index + 1}"), names)
    if isinstance(schema.get("additionalProperties"), dict):
        _name(schema["additionalProperties"], name + "Value", names)
    items = schema.get("items")
    if isinstance(items, dict):
        _name(items, name + "Item", names)
    for key in ("oneOf", "anyOf"):
        branches = schema.get(key, [])
        for index, sub in enumerate(branches):
            _name(sub, name + (f"Variant{index + 1}" if len(branches) > 1 else ""), names)
    for key in ("if", "then", "else", "not"):
        # Conditional parts only refine patterns of fields declared above; no model of their own.
        schema.pop(key, None)


def strip_custom(schema: Any) -> Any:
    """Drops what a type cannot express (see ``_CUSTOM``), so that the generator makes no
    alias for a constrained string and no validator of its own."""
    if isinstance(schema, list):
        return [strip_custom(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _CUSTOM:
            continue
        if key in ("properties", "patternProperties"):  # keys are field names, not keywords
            out[key] = {name: strip_custom(sub) for name, sub in value.items()}
        else:
            out[key] = strip_custom(value)
    return out


#: Deriv's own keywords, examples and value constraints: a type cannot say any of them (the
#: constraints are checked where it matters, by the server and by the wire tests).
_CUSTOM = frozenset(
    {
        *("auth_required", "auth_scopes", "sensitive", "examples", "example", "$schema"),
        *("pattern", "format", "default", "minLength", "maxLength", "propertyNames"),
        *("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
        *("minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties"),
    }
)
