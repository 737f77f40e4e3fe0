"""The new API's REST endpoints, in Deriv's envelopes (NEW-API.md section 2).

- ``GET /v1/health``: 200 ``text/plain`` ``OK``; no credentials.
- ``GET /trading/v1/options/accounts``: the user's accounts.
- ``POST /trading/v1/options/accounts`` (JSON ``currency``, ``group``, ``account_type``):
  200 with the existing account (an object) when the user has one of that kind, else 201
  with the new one (a one-item list).
- ``POST /trading/v1/options/accounts/{id}/otp``: ``data.url``, a one-time WebSocket URL of
  this server (``/ws/demo`` or ``/ws/real`` by the account's type).
- ``POST /trading/v1/options/accounts/{id}/reset-demo-balance``: back to 10,000.

Success is ``{"data": ..., "meta": {"endpoint", "method", "timing"}}``; an error is
``{"errors": [{"status", "code", "message"[, "field"]}], "meta": ...}`` with the same HTTP
status. ``meta.endpoint`` is the short path of Deriv's examples (``/accounts``,
``/accounts/{id}/otp``). Every account endpoint needs ``Authorization: Bearer <PAT>`` and,
with a PAT, a non-empty ``Deriv-App-ID`` (else 401). An account that is not the user's gets
404 ``AccountNotFound`` from reset-demo-balance and 400 ``ValidationError`` from the OTP call
(its only documented account error).

Runs on the connection's thread; state changes take the state's lock. :meth:`RestApi.handle`
also honours the fault controls: ``refuse()`` answers with the refused status, ``stall()``
holds the answer until ``resume()``, ``delay()`` delays it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from deriv_sdk.testing import trading
from deriv_sdk.testing.front import HttpRequest, HttpResponse
from deriv_sdk.testing.pats import DEMO_BALANCE, OptionsAccount, new_account_id
from deriv_sdk.testing.state import ServerState

ACCOUNTS = "/trading/v1/options/accounts"
HEALTH = "/v1/health"
WS_PREFIX = "/trading/v1/options/ws/"
_ACCOUNT_PATH = re.compile(r"^/trading/v1/options/accounts/([^/]+)/(otp|reset-demo-balance)$")
_ACCOUNT_ID = re.compile(r"^[A-Z]+[0-9]+$")

#: Error code and message of each HTTP status, for refusals (``refuse()``, the front door).
#: The codes are those of the OpenAPI's enum, and ``NotFound`` (404s in Deriv's docs).
REFUSALS: dict[int, tuple[str, str]] = {
    400: ("BadInputRequest", "Bad request"),
    401: ("Unauthorized", "Invalid or expired token"),
    403: ("AccessDenied", "You do not have permission to access this resource"),
    404: ("NotFound", "Resource not found"),
    408: ("BadInputRequest", "Request timeout"),
    413: ("BadInputRequest", "Request body too large"),
    429: ("RateLimit", "Rate limit exceeded"),
    431: ("BadInputRequest", "Request header fields too large"),
    500: ("InternalServerError", "Internal server error"),
    502: ("InternalServerError", "Bad gateway"),
    503: ("InternalServerError", "Service temporarily unavailable"),
    504: ("InternalServerError", "Gateway timeout"),
}


def refusal_of(status: int) -> tuple[str, str]:
    """The error code and message for a refusal with ``status``."""
    if status in REFUSALS:
        return REFUSALS[status]
    code = "InternalServerError" if status >= 500 else "BadInputRequest"
    return code, HTTPStatus(status).phrase


def error_body(
    status: int,
    code: str,
    message: str,
    endpoint: str,
    method: str,
    started: float,
    field: str | None = None,
) -> dict[str, Any]:
    """Deriv's error envelope."""
    error: dict[str, Any] = {"status": status, "code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"errors": [error], "meta": meta(endpoint, method, started)}


def meta(endpoint: str, method: str, started: float) -> dict[str, Any]:
    """The ``meta`` object: endpoint, method, and the time taken in whole milliseconds."""
    timing = int((time.monotonic() - started) * 1000)
    return {"endpoint": endpoint, "method": method, "timing": timing}


def json_response(status: int, body: Any) -> HttpResponse:
    """A JSON response."""
    return HttpResponse(status, json.dumps(body, separators=(",", ":")).encode("utf-8"))


class _Fail(Exception):
    """An error reply: raised by the endpoint code, turned into the envelope by handle()."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        allow: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.allow = allow


class RestApi:
    """The REST handler of one server.

    Args:
        state: the server's state.
        ws_base: returns ``ws://host:port`` (``wss://`` with TLS), the base of OTP URLs.
    """

    def __init__(self, state: ServerState, ws_base: Callable[[], str]) -> None:
        self._state = state
        self._ws_base = ws_base

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request that is not a WebSocket upgrade (and log it)."""
        started = time.monotonic()
        state = self._state
        refused = state.take_refusal()
        if refused is not None:
            response = self.refusal(refused, refusal_of(refused)[1], request)
        else:
            while not state.running.wait(0.2):  # stall(): hold the answer
                if state.stopping.is_set():
                    break
            response = self._route(request, started)
            if state.delay > 0:
                state.stopping.wait(state.delay)
        state.record_rest(request.method, request.path, response.status)
        return response

    def refusal(self, status: int, message: str, request: HttpRequest | None) -> HttpResponse:
        """The response for a request refused with ``status`` (Deriv's envelope; plain text
        for the health check, which answers text)."""
        if request is not None and request.path == HEALTH:
            return HttpResponse(status, message.encode("utf-8"), "text/plain; charset=utf-8")
        code = refusal_of(status)[0]
        endpoint = _endpoint(request.path) if request is not None else "/"
        method = request.method if request is not None else "GET"
        return json_response(
            status, error_body(status, code, message, endpoint, method, time.monotonic())
        )

    # -- routing -------------------------------------------------------------------------

    def _route(self, request: HttpRequest, started: float) -> HttpResponse:
        path, method = request.path, request.method
        endpoint = _endpoint(path)
        try:
            if self._state.stopping.is_set():
                raise _Fail(503, *REFUSALS[503])
            if path == HEALTH:
                _allow(method, "GET", "HEAD")
                return HttpResponse(200, b"OK", "text/plain; charset=utf-8")
            if path.startswith(WS_PREFIX):
                raise _Fail(400, "ValidationError", "A WebSocket upgrade request is expected")
            match = _ACCOUNT_PATH.match(path)
            if path != ACCOUNTS and match is None:
                raise _Fail(404, *REFUSALS[404])
            _allow(method, *(("GET", "POST") if match is None else ("POST",)))
            pat = _authenticate(self._state, request)
            data: Any
            with self._state.lock:
                if match is None and method == "GET":
                    status, data = 200, self._accounts(pat)
                elif match is None:
                    status, data = self._create(pat, request)
                elif match.group(2) == "otp":
                    status, data = 200, self._otp(pat, match.group(1))
                else:
                    status, data = 200, self._reset(pat, match.group(1))
            return json_response(status, {"data": data, "meta": meta(endpoint, method, started)})
        except _Fail as fail:
            body = error_body(
                fail.status, fail.code, fail.message, endpoint, method, started, fail.field
            )
            response = json_response(fail.status, body)
            if fail.allow is not None:
                response.headers["Allow"] = fail.allow
            return response

    # -- endpoints (state lock held) -------------------------------------------------------

    def _accounts(self, pat: str) -> list[dict[str, Any]]:
        return [a.payload() for a in self._state.pat_accounts.get(pat, [])]

    def _create(self, pat: str, request: HttpRequest) -> tuple[int, Any]:
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _Fail(
                400, "ValidationError", "Content-Type must be application/json", "Content-Type"
            )
        try:
            body = json.loads(request.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            body = None
        if not isinstance(body, dict):
            raise _Fail(400, "BadInputRequest", "The request body must be a JSON object")
        allowed = {"currency": ("USD",), "group": ("row",), "account_type": ("demo", "real")}
        for name, values in allowed.items():
            if name not in body:
                raise _Fail(400, "FieldIsRequired", f"{name} field is required", name)
            if body[name] not in values:
                raise _Fail(
                    400, "ValidationError", f"{name} must be one of: {', '.join(values)}", name
                )
        accounts = self._state.pat_accounts.setdefault(pat, [])
        for account in accounts:
            if account.account_type == body["account_type"] and account.currency == "USD":
                return 200, account.payload()
        taken = set(self._state.accounts_by_login)
        account = OptionsAccount(
            account_id=new_account_id(pat, taken),
            pat=pat,
            balance=DEMO_BALANCE if body["account_type"] == "demo" else 0.0,
            account_type=body["account_type"],
        )
        accounts.append(account)
        self._state.accounts_by_login[account.account_id] = account
        return 201, [account.payload()]

    def _otp(self, pat: str, account_id: str) -> dict[str, Any]:
        account = self._state.account_of(pat, account_id)
        if account is None:
            raise _Fail(400, "ValidationError", "Invalid account ID format", "accountId")
        otp = self._state.otps.issue(account)
        return {"url": f"{self._ws_base()}{WS_PREFIX}{account.account_type}?otp={otp}"}

    def _reset(self, pat: str, account_id: str) -> dict[str, Any]:
        account = self._state.account_of(pat, account_id)
        if account is None:
            if not _ACCOUNT_ID.match(account_id):
                raise _Fail(400, "ValidationError", "Invalid account ID format", "account_id")
            raise _Fail(404, "AccountNotFound", "Resource not found")
        if account.account_type != "demo":
            raise _Fail(400, "ValidationError", "Only demo accounts can have their balance reset")
        trading.reset_balance(self._state, account)
        payload = account.payload()
        del payload["group"]  # the reset response's data has no group
        return payload


def _endpoint(path: str) -> str:
    """``meta.endpoint``: the short form of Deriv's examples for the account endpoints."""
    if path == ACCOUNTS or _ACCOUNT_PATH.match(path):
        return "/accounts" + path[len(ACCOUNTS) :]
    return path


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        message = f"Method {method} is not allowed"
        raise _Fail(405, "BadInputRequest", message, allow=", ".join(allowed))


def _authenticate(state: ServerState, request: HttpRequest) -> str:
    """The PAT of the request, or a 401 (Deriv's messages)."""
    scheme, _, token = (request.header("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _Fail(401, "Unauthorized", "Invalid or missing authentication credentials")
    with state.lock:
        known = token in state.pat_accounts
    if not known:
        raise _Fail(401, "Unauthorized", "Invalid or expired token")
    if not (request.header("deriv-app-id") or "").strip():
        raise _Fail(
            401, "Unauthorized", "Deriv-App-ID header is required for PAT tokens", "Deriv-App-ID"
        )
    return token
