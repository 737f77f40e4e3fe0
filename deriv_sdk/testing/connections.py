"""Serving WebSocket connections of both APIs: the handshake hooks and the request loop.

:func:`process_request` runs during websockets' opening handshake. It picks the API by path:
``/trading/v1/options/ws/public|demo|real`` is the new API (``demo``/``real`` need a valid
``otp`` query parameter: 400 without one, 401 for a used, expired, unknown or wrong-path one,
with Deriv's JSON bodies); any other path is v3 (whose URL must carry a numeric ``app_id``).
:func:`process_response` logs every handshake with its final status. :func:`serve` runs on
the connection's ``deriv_sdk-server-conn-N`` thread once it is open: it reads every request,
logs it, holds it while the server is stalled, and answers it through the router.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection

from deriv_sdk.testing import envelope, rest
from deriv_sdk.testing.pats import OptionsAccount
from deriv_sdk.testing.router import dispatch
from deriv_sdk.testing.session import Session
from deriv_sdk.testing.state import ServerState
from deriv_sdk.testing.validation import LEGACY, OPTIONS

logger = logging.getLogger("deriv_sdk.testing")

_KINDS = ("public", "demo", "real")


@dataclass
class Route:
    """What the handshake decided for one connection (kept on the websockets connection)."""

    api: str
    path: str
    otp: str | None = None
    app_id_ok: bool = True
    account: OptionsAccount | None = None
    session: Session | None = None  # registered before the 101 goes out (process_response)


def route_of(conn: ServerConnection) -> Route:
    """The :class:`Route` of ``conn`` (a v3 route if its handshake never set one)."""
    route = getattr(conn, "deriv_route", None)
    return route if isinstance(route, Route) else Route(LEGACY, "/")


def _json(status: int, body: dict[str, Any]) -> Response:
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Connection", "close"),
        ]
    )
    return Response(status, HTTPStatus(status).phrase, headers, data)


def _refuse(status: int, code: str, message: str, path: str, started: float) -> Response:
    return _json(status, rest.error_body(status, code, message, path, "GET", started))


def process_request(
    state: ServerState, conn: ServerConnection, request: Request
) -> Response | None:
    """websockets' ``process_request`` hook: route the handshake, or refuse it."""
    started = time.monotonic()
    split = urlsplit(request.path)
    query = parse_qs(split.query, keep_blank_values=True)
    path = split.path
    otp = query.get("otp", [None])[0]
    route = Route(OPTIONS if path.startswith(rest.WS_PREFIX) else LEGACY, path, otp)
    conn.deriv_route = route  # type: ignore[attr-defined]
    refused = state.take_refusal()
    if refused is not None:
        return _refuse(refused, *rest.refusal_of(refused), path, started)
    if route.api == LEGACY:
        route.app_id_ok = query.get("app_id", [""])[0].isdigit()
        return None
    kind = path[len(rest.WS_PREFIX) :]
    if kind not in _KINDS:
        return _refuse(404, *rest.REFUSALS[404], path, started)
    if kind == "public":
        return None
    if not otp:
        return _refuse(400, "ValidationError", "OTP parameter is required", path, started)
    with state.lock:
        account_id = state.otps.redeem(otp, kind)
        account = state.accounts_by_login.get(account_id) if account_id else None
    if not isinstance(account, OptionsAccount):
        return _refuse(401, "Unauthorized", "Invalid or expired OTP token", path, started)
    route.account = account
    return None


def process_response(
    state: ServerState, conn: ServerConnection, request: Request, response: Response
) -> Response | None:
    """websockets' ``process_response`` hook: log the handshake with its final status, and
    register the session of an accepted one *before* its 101 goes out: a client that has
    seen the 101 is reached by every fault control (close_all(), drop(), stop())."""
    route = route_of(conn)  # set by process_request, which websockets always runs first
    state.record_handshake(route.api, route.path, response.status_code, route.otp)
    if response.status_code == 101:
        route.session = Session(
            conn,
            getattr(conn, "number", 0),
            route.app_id_ok,
            lambda: state.stalled,
            lambda: state.delay,
            route.api,
            route.account,
        )
        conn.deriv_route = route  # type: ignore[attr-defined]
        with state.lock:
            state.sessions.add(route.session)
    return None


def serve(
    state: ServerState, conn: ServerConnection, start_writer: Callable[[Session], None]
) -> None:
    """Serve one open connection until it closes (on its ``deriv_sdk-server-conn-N`` thread).

    Args:
        state: the server's state.
        conn: the websockets connection, after its handshake.
        start_writer: starts (and tracks, for stop()) the session's writer thread.
    """
    session = route_of(conn).session
    if session is None:  # (websockets always runs process_response before the handler)
        return
    with state.lock:
        if state.stopping.is_set() or session.finished:
            # stop() or drop() came between the 101 and now: this connection goes too.
            state.sessions.discard(session)
            with contextlib.suppress(OSError):
                conn.socket.shutdown(socket.SHUT_RDWR)
            return
    start_writer(session)
    try:
        while True:
            raw = conn.recv()
            _on_message(state, session, raw)
    except ConnectionClosed:
        pass
    except Exception:  # a bug: log it, never let it pass silently
        logger.exception("LocalServer: connection %d failed", session.number)
    finally:
        with state.lock:
            state.sessions.discard(session)
            session.streams.clear()
        session.finish()


def _on_message(state: ServerState, session: Session, raw: str | bytes) -> None:
    request: Any = None
    problem = None
    if isinstance(raw, bytes):
        problem = "Binary frames are not supported; send JSON text frames."
    else:
        try:
            request = json.loads(raw)
        except ValueError:
            problem = "Input validation failed: the request is not valid JSON."
        else:
            if not isinstance(request, dict):
                problem = "Input validation failed: the request must be a JSON object."
    if isinstance(request, dict):
        state.record_request(request)
    # stall(): hold the request until resume(); discard it if the connection closes.
    while not state.running.wait(0.2):
        if state.stopping.is_set() or session.closed:
            return
    if session.closed or state.stopping.is_set():
        return
    if problem is not None or not isinstance(request, dict):
        err = envelope.ApiError("InputValidationFailed", problem or "", {})
        session.send(envelope.error(None, {}, err, "error"))
        return
    message = dispatch(state, session, request)
    if message is not None:
        session.send(message)
    if not session.app_id_ok:
        session.request_close(1008, "Invalid app_id", after_queued=True)
