"""Wrapper side of ``tools/gen_api.py``: one typed method per call, following API.md's
"Typed calls" convention. The parameter types are read (with :mod:`ast`) from the request
TypedDicts that datamodel-code-generator made, so both say the same.

- The call's own field is the first positional parameter, unless it is the constant 1 (then it
  is filled in); every other field is keyword-only, required ones without a default. ``req_id``
  is the SDK's and ``subscribe`` is decided by ``listener=``.
- An optional field defaults to None, meaning "not sent"; a field whose schema allows null
  defaults to ``OMIT`` instead, so that None can be sent.
- A call that can stream gets ``typing.overload``s: with ``listener=`` (and ``on_end=``) it
  returns the ``Subscription``, without it the response. A call whose schema requires
  ``subscribe: 1`` (``transaction``) requires a listener.
- ``authorize``, ``forget`` and ``forget_all`` go through ``Connection``'s methods of the same
  name (with every field of the call), which also keep the session's bookkeeping (the token
  remembered for reconnects, the local Subscriptions ended).
"""

from __future__ import annotations

import ast
import keyword
import textwrap
from dataclasses import dataclass
from typing import Any

from gen_api_fixes import MARK
from gen_api_schema import ENVELOPE, Call

#: Calls that go through ``Connection``'s own method (see the module docstring).
SPECIAL = {
    "authorize": "self._authorize(payload, timeout)",
    "forget": "self._forget(payload, timeout)",
    "forget_all": "self._forget_all(payload, timeout)",
}

#: Calls whose stream carries other messages than their response: a ``buy`` with
#: ``subscribe: 1`` streams the bought contract's ``proposal_open_contract`` updates.
STREAM_MESSAGES = {"buy": ("Buy", "ProposalOpenContract")}

_RESERVED = {"self", "timeout", "listener", "on_end", "payload"}
_WIDTH = 96


@dataclass
class Param:
    name: str  # the Python name
    wire: str  # the field's name on the wire
    annotation: str
    required: bool
    nullable: bool
    doc: str


def wrapper_module(
    calls: list[Call],
    *,
    types_module: str,
    types_source: str,
    cls: str,
    title: str,
    head: str,
    notes: tuple[str, ...] = (),
) -> str:
    fields, defined = _request_fields(types_source)
    used: set[str] = set()
    methods = [_method(call, fields, defined, used, cls) for call in calls]
    imports = ",\n        ".join(sorted(used))
    doc = (
        f"Typed calls of {title}: ``{cls}(conn)`` wraps a ``Connection``.\n\n"
        "    Every method sends one request through ``conn.request()`` (or, with\n"
        "    ``listener=``, ``conn.subscribe()``) and returns the response as the TypedDict of\n"
        f"    ``{types_module}``. Errors are those of ``request()``: ``APIError`` for a\n"
        "    refusal, ``RequestTimeoutError``, ``ConnectionClosedError``, ``InvalidStateError``.\n"
        "    Listeners and ``on_end`` run on the connection's dispatch thread.\n"
    )
    for note in notes:
        doc += "\n" + "\n".join(_wrap(f"{MARK} {note}", indent="    ")) + "\n"
    doc += "    "
    return (
        f"{head}\n"
        "from __future__ import annotations\n\n"
        "from collections.abc import Callable\n"
        "from typing import TYPE_CHECKING, Any, Literal, cast, overload\n\n"
        "from deriv_sdk.api._base import OMIT, BaseAPI, Omit, payload_of\n\n"
        "if TYPE_CHECKING:\n"
        "    from deriv_sdk.subscriptions import Subscription\n"
        f"    from {types_module} import (\n        {imports},\n    )\n\n"
        f'__all__ = ["{cls}"]\n\n\n'
        f"class {cls}(BaseAPI):\n"
        f'    """{doc}"""\n\n'
        "    __slots__ = ()\n\n" + "\n".join(methods)
    )


def _request_fields(source: str) -> tuple[dict[str, dict[str, ast.expr]], set[str]]:
    """Class name -> field -> annotation (``NotRequired`` removed), from the types module."""
    fields: dict[str, dict[str, ast.expr]] = {}
    defined: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            defined.add(node.name)
            fields[node.name] = {
                item.target.id: _required_form(item.annotation)
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            defined.add(name)
            value = node.value
            if isinstance(value, ast.Call) and len(value.args) == 2:  # TypedDict("X", {...})
                spec = value.args[1]
                assert isinstance(spec, ast.Dict)
                fields[name] = {
                    k.value: _required_form(v)
                    for k, v in zip(spec.keys, spec.values, strict=True)
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                }
    return fields, defined


def _required_form(node: ast.expr) -> ast.expr:
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("NotRequired", "Required")
    ):
        return node.slice
    return node


def _nullable(node: ast.expr) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _nullable(node.left) or _nullable(node.right)
    return isinstance(node, ast.Constant) and node.value is None


def _names(node: ast.expr, defined: set[str]) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in defined}


def _params(
    call: Call, fields: dict[str, ast.expr], defined: set[str], used: set[str]
) -> list[Param]:
    props = call.request["properties"]
    required = set(call.request.get("required", []))
    params = []
    for wire, schema in props.items():
        if wire in ENVELOPE:
            continue
        if not wire.isidentifier():
            raise SystemExit(f"{call.name}: field {wire!r} is not a Python name")
        node = fields[wire]
        used.update(_names(node, defined))
        name = wire + "_" if keyword.iskeyword(wire) or wire in _RESERVED else wire
        params.append(
            Param(name, wire, ast.unparse(node), wire in required, _nullable(node),
                  schema.get("description", ""))
        )  # fmt: skip
    if "passthrough" in props:
        params.append(
            Param("passthrough", "passthrough", "dict[str, Any]", False, False,
                  props["passthrough"].get("description", ""))
        )  # fmt: skip
    return params


def _method(
    call: Call, all_fields: dict[str, dict[str, ast.expr]], defined: set[str], used: set[str],
    cls: str,
) -> str:  # fmt: skip
    request_name, response_name = call.camel + "Request", call.camel + "Response"
    params = _params(call, all_fields[request_name], defined, used)
    method_field = call.request["properties"][call.name]
    constant = method_field.get("enum") == [1]
    positional = [p for p in params if p.wire == call.name and not constant]
    keywords = [p for p in params if p.wire != call.name]
    keywords.sort(key=lambda p: not p.required)  # required first, each group in schema order
    response = response_name
    used.add(response_name)
    message = response_name
    if call.name in STREAM_MESSAGES:
        parts = [p + "Response" for p in STREAM_MESSAGES[call.name]]
        used.update(parts)
        message = " | ".join(parts)
    sig = ["self", *(_param_text(p) for p in positional)]
    sig.append("*")
    sig.extend(_param_text(p) for p in keywords)
    sig.append("timeout: float | None = None")
    listener = f"listener: Callable[[{message}], object]"
    on_end = "on_end: Callable[[Subscription], object] | None = None"
    name = call.name if not keyword.iskeyword(call.name) else call.name + "_"
    out = []
    if call.streams and not call.must_stream and call.name not in SPECIAL:
        for extra, returns in (([], response), ([listener, on_end], "Subscription")):
            out.append(_def(name, [*sig, *extra], returns, "..."))
        body_sig = [*sig, listener + " | None = None", on_end]
        returns = f"{response} | Subscription"
        call_args = "payload, timeout, listener, on_end"
    elif call.streams and call.must_stream:
        body_sig, returns = [*sig, listener, on_end], "Subscription"
        call_args = "payload, timeout, listener, on_end"
    else:
        body_sig, returns, call_args = sig, response, "payload, timeout"
    body = [_docstring(call, [*positional, *keywords], response, message, cls)]
    body.append(_payload_code(call, [*positional, *keywords], constant))
    expr = SPECIAL.get(call.name, f"self._call({call_args})")
    body.append(f'return cast("{returns}", {expr})')
    out.append(_def(name, body_sig, returns, "\n".join(body)))
    return "\n".join(out)


def _param_text(p: Param) -> str:
    if p.required:
        return f"{p.name}: {p.annotation}"
    if p.nullable:
        return f"{p.name}: {p.annotation} | Omit = OMIT"
    return f"{p.name}: {p.annotation} | None = None"


def _def(name: str, sig: list[str], returns: str, body: str) -> str:
    deco = "    @overload\n" if body == "..." else ""
    params = ", ".join(sig)
    if body == "...":
        return f"{deco}    def {name}({params}) -> {returns}: ...\n"
    return f"    def {name}({params}) -> {returns}:\n" + textwrap.indent(body, " " * 8) + "\n"


def _payload_code(call: Call, params: list[Param], constant: bool) -> str:
    plain = [p for p in params if not p.nullable]
    entries = [f'"{call.name}": 1'] if constant else []
    entries += [f'"{p.wire}": {p.name}' for p in plain]
    code = "payload = payload_of({" + ", ".join(entries) + "}"
    nullable = [p for p in params if p.nullable]
    if nullable:
        code += ", {" + ", ".join(f'"{p.wire}": {p.name}' for p in nullable) + "}"
    return code + ")"


def _docstring(call: Call, params: list[Param], response: str, message: str, cls: str) -> str:
    request, response_schema = call.request, call.response
    lines = _wrap(_clean(request.get("description") or request.get("title", call.name)))
    lines.append("")
    about = _clean(request.get("title", "")).removesuffix("(request)").strip()
    auth = _auth(request, cls)
    lines += _wrap(" ".join(x for x in (f"{about}." if about else "", auth) if x))
    if call.name in SPECIAL:
        lines += ["", *_wrap(_special_note(call.name))]
    for note in call.notes:
        typed = f"{MARK} typed as the server sends it, not as Deriv's schema says:"
        lines += ["", *_wrap(f"{typed} {note}")]
    lines += ["", "Args:"]
    for p in params:
        text = _clean(p.doc) or "See Deriv's schema."
        if p.nullable:
            text += " None sends null; leave it out to omit the field."
        lines += _wrap(f"{p.name}: {text}", indent="    ", hang="        ")
    streamed = " (with ``listener``: for the first message)" if call.streams else ""
    lines += _wrap(
        f"timeout: Seconds to wait for the answer{streamed}; None: the connection's "
        "``request_timeout``.", indent="    ", hang="        ",
    )  # fmt: skip
    if call.streams and call.name not in SPECIAL:
        what = f"({message})"
        if call.name in STREAM_MESSAGES:
            what = f"({message}: the receipt, then the bought contract's updates)"
        lines += _wrap(
            f"listener: Called with every message of the stream {what}, the first "
            "included, on the dispatch thread. With it the call subscribes and returns the "
            "``Subscription``.", indent="    ", hang="        ",
        )  # fmt: skip
        lines += _wrap(
            "on_end: Called once with the Subscription, on the dispatch thread, when the "
            "stream ends other than by its own ``forget()`` (``sub.error`` says why).",
            indent="    ", hang="        ",
        )  # fmt: skip
    lines += ["", "Returns:"]
    if call.must_stream:
        result = "Subscription: the stream's handle (this call cannot be made without one)."
    else:
        described = _clean(response_schema.get("description", "")).rstrip(".") or "The reply"
        result = f"{response}: {described}."
        if call.streams:
            result += " With ``listener``: the ``Subscription`` instead."
    lines += _wrap(result, indent="    ", hang="        ")
    lines += ["", "Raises:"]
    lines += _wrap("APIError: The server refused the call.", indent="    ", hang="        ")
    lines += _wrap(
        "RequestTimeoutError, ConnectionClosedError, InvalidStateError: As "
        "``Connection.request()``.", indent="    ", hang="        ",
    )  # fmt: skip
    text = "\n".join(lines).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return '"""' + text.lstrip() + '\n"""'


def _special_note(name: str) -> str:
    if name == "authorize":
        return (
            "Sent by ``Connection.authorize()``: the token is remembered, so that a reconnect "
            "authorizes again, and never shown in logs or errors."
        )
    if name == "forget":
        return "Sent by ``Connection.forget()``, which also ends the local ``Subscription``s."
    return (
        "Sent by ``Connection.forget_all()``, which also ends the local ``Subscription``s of "
        "those streams."
    )


def _auth(request: dict[str, Any], cls: str) -> str:
    if not request.get("auth_required"):
        return "Needs no login."
    scopes = ", ".join(request.get("auth_scopes", []))
    scope = f" (scopes: {scopes})" if scopes else ""
    if cls == "OptionsAPI":
        return f"Needs an account's socket (``Connection.options(account_id=...)``){scope}."
    return f"Needs an authorized connection{scope}."


def _clean(text: str) -> str:
    return " ".join(str(text).split())


def _wrap(text: str, indent: str = "", hang: str | None = None) -> list[str]:
    if not text:
        return []
    return textwrap.wrap(
        text,
        _WIDTH - 8,
        initial_indent=indent,
        subsequent_indent=hang if hang is not None else indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
