"""Pure Deriv v3 message logic: no socket, thread or clock.

- ``encode_send``: what ``Connection.send`` puts on the wire for a dict, list, str or bytes.
- ``stamp``: a copy of a request with its ``req_id``.
- ``classify``: sorts an inbound message into a response to request N, an update of stream
  S, an API error, or an unsolicited message. Correlation is on ``req_id``, never on
  ``msg_type``: ``ticks`` answers ``tick``, ``ticks_history`` answers ``history`` or
  ``candles`` and then streams ``tick`` or ``ohlc``.
- ``stream_key`` and ``stream_type``: how identical subscriptions share one server stream,
  and which ``forget_all`` type a stream belongs to.

The JSON codec is orjson when it is installed (the ``speed`` extra) and the environment
variable ``DERIV_SDK_NO_ORJSON`` is unset, else the standard library's ``json``.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from .frames import OP_BINARY, OP_TEXT

__all__ = [
    "JSON_BACKEND",
    "Kind",
    "call_name",
    "classify",
    "creates",
    "dumps",
    "encode_send",
    "follow_up",
    "loads",
    "stamp",
    "stream_key",
    "stream_type",
]

# Request fields that do not name the call and do not change what a stream carries.
_ENVELOPE_FIELDS = frozenset({"req_id", "passthrough", "subscribe", "loginid"})
_KEY_IGNORED = frozenset({"req_id", "passthrough", "subscribe"})

# Deriv call -> the ``forget_all`` stream type its stream belongs to (derived/calls.json).
_STREAM_TYPES: dict[str, str] = {
    "balance": "balance",
    "buy": "proposal_open_contract",
    "crypto_estimations": "crypto_estimations",
    "p2p_advert_info": "p2p_advert",
    "p2p_advertiser_create": "p2p_advertiser",
    "p2p_advertiser_info": "p2p_advertiser",
    "p2p_order_create": "p2p_order",
    "p2p_order_info": "p2p_order",
    "p2p_order_list": "p2p_order",
    "p2p_settings": "p2p_settings",
    "proposal": "proposal",
    "proposal_open_contract": "proposal_open_contract",
    "ticks": "ticks",
    "transaction": "transaction",
    "website_status": "website_status",
}


# Made once: json.dumps() with arguments builds a new encoder on every call (~2 us).
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _json_dumps(value: Any) -> bytes:
    try:
        return _encode(value).encode("utf-8")
    except ValueError as exc:  # NaN, infinity, circular reference
        raise TypeError(f"cannot encode as JSON: {exc}") from exc


_raw_decode = json.JSONDecoder().raw_decode


def _json_loads(data: bytes) -> Any:
    """Strict UTF-8 (RFC 6455 text frames), then JSON.

    ``json.loads(bytes)`` would guess the encoding and let UTF-8-encoded surrogates through;
    decoding first is both stricter and faster. The fast path skips ``json.loads``'s two
    whitespace scans; anything unusual (whitespace around the value, trailing data) takes the
    strict standard path, which accepts or rejects exactly what ``json.loads`` does.

    Raises:
        ValueError: Not UTF-8 (``UnicodeDecodeError``) or not JSON.
    """
    text = data.decode("utf-8")
    try:
        value, end = _raw_decode(text)
    except ValueError:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


loads: Callable[[bytes], Any] = _json_loads
dumps: Callable[[Any], bytes] = _json_dumps
JSON_BACKEND = "json"

if not os.environ.get("DERIV_SDK_NO_ORJSON"):
    try:
        import orjson
    except ImportError:
        pass
    else:
        # Decoding only: orjson would encode NaN as null where json refuses it, and the
        # requests we send are small, so encoding stays with the strict standard library.
        # orjson.loads rejects invalid UTF-8 (surrogates included) as strictly as we want.
        loads = orjson.loads
        JSON_BACKEND = "orjson"


class Kind(enum.Enum):
    """What an inbound message is, as far as the message alone tells."""

    RESPONSE = "response"  # carries a req_id and no subscription
    STREAM = "stream"  # carries subscription.id (a stream update, or a stream's first reply)
    ERROR = "error"  # carries an error object
    UNSOLICITED = "unsolicited"  # carries no req_id


def encode_send(data: object) -> tuple[int, bytes]:
    """The frame ``Connection.send(data)`` sends: ``(opcode, payload)``.

    Raises:
        TypeError: ``data`` is not a dict, list, str or bytes, or JSON cannot encode it.
    """
    if isinstance(data, (dict, list)):
        return OP_TEXT, dumps(data)
    if isinstance(data, str):
        try:
            return OP_TEXT, data.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate
            raise TypeError(f"cannot encode as UTF-8: {exc}") from exc
    if isinstance(data, (bytes, bytearray, memoryview)):
        return OP_BINARY, bytes(data)
    raise TypeError(f"send() takes a dict, list, str or bytes, not {type(data).__name__}")


def call_name(payload: Mapping[str, Any]) -> str:
    """The Deriv call a request makes: its first key that is not an envelope field.

    Raises:
        ValueError: The payload names no call.
    """
    for key in payload:
        if key not in _ENVELOPE_FIELDS:
            return str(key)
    raise ValueError("the request names no Deriv call (e.g. {'ping': 1})")


def stamp(payload: Mapping[str, Any], req_id: int, **extra: Any) -> dict[str, Any]:
    """A copy of ``payload`` with ``req_id`` (and any ``extra`` fields) set."""
    out = dict(payload)
    out.update(extra)
    out["req_id"] = req_id
    return out


def classify(message: Any) -> tuple[Kind, int | None, str | None]:
    """Sorts one decoded inbound message.

    Returns:
        ``(kind, req_id, subscription_id)``; an error wins over a subscription.
    """
    if not isinstance(message, dict):
        return Kind.UNSOLICITED, None, None
    req_id = message.get("req_id")
    if not isinstance(req_id, int) or isinstance(req_id, bool):
        req_id = None
    if "error" in message:
        return Kind.ERROR, req_id, None
    sub = message.get("subscription")
    sub_id = sub.get("id") if isinstance(sub, dict) else None
    if isinstance(sub_id, str):
        return Kind.STREAM, req_id, sub_id
    if req_id is None:
        return Kind.UNSOLICITED, None, None
    return Kind.RESPONSE, req_id, None


def stream_key(payload: Mapping[str, Any]) -> str:
    """Identifies what a subscription carries: the request minus req_id, passthrough and
    subscribe, as canonical JSON. Identical keys share one server stream."""
    body = {k: v for k, v in payload.items() if k not in _KEY_IGNORED}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)


def stream_type(payload: Mapping[str, Any]) -> str | None:
    """The ``forget_all`` type of the stream a subscribe request starts, or None when
    Deriv has none for it (``exchange_rates``, ``ticks_batch``: forget those by id)."""
    try:
        name = call_name(payload)
    except ValueError:
        return None
    if name == "ticks_history":
        return "candles" if payload.get("style") == "candles" else "ticks"
    return _STREAM_TYPES.get(name)


# Calls that create something (a contract, an order) and can stream what they created: their
# stream is never shared (two identical buys are two contracts) and never sent again after a
# reconnect (that would buy again): it is followed by a read-only call instead.
_CREATING = frozenset({"buy", "p2p_order_create", "p2p_advertiser_create"})


def creates(payload: Mapping[str, Any]) -> bool:
    """Whether the request creates something (see ``follow_up``)."""
    try:
        return call_name(payload) in _CREATING
    except ValueError:
        return False


def follow_up(request: Mapping[str, Any], first_reply: Mapping[str, Any]) -> dict[str, Any] | None:
    """The read-only subscribe request that follows what a creating request's stream
    follows, once its first reply has come: ``buy`` -> ``proposal_open_contract`` of the
    contract, ``p2p_order_create`` -> ``p2p_order_info``, ``p2p_advertiser_create`` ->
    ``p2p_advertiser_info``. None when the reply does not say what was created."""
    name = call_name(request)
    created = first_reply.get(name)
    created = created if isinstance(created, dict) else {}
    follow: dict[str, Any] | None = None
    if name == "buy" and created.get("contract_id") is not None:
        follow = {"proposal_open_contract": 1, "contract_id": created["contract_id"]}
    elif name == "p2p_order_create" and created.get("id") is not None:
        follow = {"p2p_order_info": 1, "id": created["id"]}
    elif name == "p2p_advertiser_create":
        follow = {"p2p_advertiser_info": 1}
    if follow is None:
        return None
    if "loginid" in request:  # (v3: the account the call was made for)
        follow["loginid"] = request["loginid"]
    follow["subscribe"] = 1
    return follow
