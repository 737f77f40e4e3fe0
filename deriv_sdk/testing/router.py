"""Request dispatch for both APIs: find the call, check it, run its handler.

The order of the checks is Deriv's: v3's ``InvalidAppID`` first; then an unknown call
(``UnrecognisedRequest``: also every v3-only call, e.g. ``authorize``, on a new-API socket);
then the rate limit; then the call's official request schema (``InputValidationFailed``);
then ``AuthorizationRequired`` for a call whose schema has ``auth_required`` on a connection
without an account (v3 before ``authorize``; the new API's public socket).
"""

from __future__ import annotations

from typing import Any

from deriv_sdk.testing import envelope, handlers, options
from deriv_sdk.testing.envelope import ApiError
from deriv_sdk.testing.session import Session
from deriv_sdk.testing.state import ServerState
from deriv_sdk.testing.validation import (
    IMPLEMENTED,
    LEGACY,
    OPTIONS,
    auth_required,
    find_call,
    validate,
)

TABLES: dict[str, dict[str, handlers.Handler]] = {
    LEGACY: handlers.HANDLERS,
    OPTIONS: options.HANDLERS,
}


def msg_type_of(api: str, call: str | None, request: dict[str, Any]) -> str:
    """The ``msg_type`` of the (first) reply to ``request``; also used for its errors."""
    if call is None or call not in IMPLEMENTED[api]:
        return "error"
    if call == "ticks":
        return "tick"
    if call == "ticks_history":
        return "candles" if request.get("style") == "candles" else "history"
    return call


def dispatch(
    state: ServerState, session: Session, request: dict[str, Any]
) -> dict[str, Any] | None:
    """Answer one decoded request on ``session``: the reply, or Deriv's error envelope.

    Returns None when the handler queued its messages itself (``buy`` and ``sell`` queue
    their receipt before the balance and transaction updates they cause).
    """
    api = session.api
    call = find_call(api, request)
    msg_type = msg_type_of(api, call, request)
    try:
        if api == LEGACY and not session.app_id_ok:
            raise ApiError("InvalidAppID", "Your app_id is invalid.")
        if call is None or call not in IMPLEMENTED[api]:
            raise ApiError("UnrecognisedRequest", "Unrecognised request.")
        limit = state.rate_limits.get(call)
        if limit is not None and not session.rate_ok(call, limit):
            raise ApiError("RateLimit", f"You have reached the rate limit for {call}.")
        problem = validate(api, call, request)
        if problem is not None:
            raise ApiError("InputValidationFailed", problem[0], problem[1])
        if auth_required(api, call) and session.account is None:
            raise ApiError("AuthorizationRequired", "Please log in.")
        with state.lock:
            return TABLES[api][call](state, session, request)
    except ApiError as err:
        return envelope.error(call, request, err, msg_type)
