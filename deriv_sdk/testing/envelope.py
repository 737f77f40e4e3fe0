"""Deriv's message envelope: replies, stream messages and error messages.

Every message the server sends carries ``echo_req`` (the request, sensitive fields masked),
``msg_type``, ``req_id`` when the request had one (also on every later message of a stream),
``passthrough`` when the request had one, and ``subscription: {"id": ...}`` on stream
messages. Errors are ``{"echo_req", "error": {"code", "message", "details"?}, "msg_type",
"req_id"?}``.
"""

from __future__ import annotations

import uuid
from typing import Any

from deriv_sdk.testing.validation import LEGACY, mask_sensitive


class ApiError(Exception):
    """A Deriv error to answer a request with.

    Args:
        code: Deriv's error code, e.g. ``"InputValidationFailed"``.
        message: the human-readable text.
        details: optional ``error.details`` object.
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


def new_id(dashed: bool = False) -> str:
    """A fresh stream or proposal id: a UUID4 as 32 lowercase hex characters (v3's shape), or
    with its dashes (``dashed``: the shape of the new API's documented examples)."""
    return str(uuid.uuid4()) if dashed else uuid.uuid4().hex


def base(call: str | None, request: dict[str, Any], msg_type: str) -> dict[str, Any]:
    """The envelope fields of a message answering ``request``.

    ``echo_req`` masks the fields that v3's schemas mark ``sensitive`` whichever the API: the
    new API's schemas mark none, and a v3 ``authorize`` sent to a new-API socket must not have
    its token echoed either.
    """
    echo = mask_sensitive(LEGACY, call, request)
    message: dict[str, Any] = {"echo_req": echo, "msg_type": msg_type}
    if isinstance(request.get("req_id"), int):
        message["req_id"] = request["req_id"]
    if isinstance(request.get("passthrough"), dict):
        message["passthrough"] = request["passthrough"]
    return message


def reply(
    call: str,
    request: dict[str, Any],
    msg_type: str,
    payload: Any,
    subscription_id: str | None = None,
) -> dict[str, Any]:
    """A reply (or stream message) carrying ``payload`` under the key ``msg_type``."""
    message = base(call, request, msg_type)
    message[msg_type] = payload
    if subscription_id is not None:
        message["subscription"] = {"id": subscription_id}
    return message


def error(
    call: str | None, request: dict[str, Any], err: ApiError, msg_type: str | None = None
) -> dict[str, Any]:
    """An error message in Deriv's envelope; ``msg_type`` defaults to the call (or "error")."""
    message = base(call, request, msg_type or call or "error")
    body: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.details is not None:
        body["details"] = err.details
    message["error"] = body
    return message


#: ``msg_type`` of the replies to each call whose reply type is not the call's name.
MSG_TYPES = {"ticks": "tick"}
