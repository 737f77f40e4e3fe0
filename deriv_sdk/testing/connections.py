"""Serving WebSocket connections: the handshake hook and the request loop of each connection.

:func:`process_request` runs during websockets' opening handshake (refusals, the URL);
:func:`serve` runs on the connection's ``deriv_sdk-server-conn-N`` thread once it is open:
it reads every request, records it, holds it while the server is stalled, and answers it
through the dispatcher of the connection's API.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection

from deriv_sdk.testing import envelope
from deriv_sdk.testing.handlers import dispatch
from deriv_sdk.testing.session import Session
from deriv_sdk.testing.state import ServerState

logger = logging.getLogger("deriv_sdk.testing")


def process_request(
    state: ServerState, conn: ServerConnection, request: Request
) -> Response | None:
    """websockets' ``process_request`` hook: refuse the handshake, or note what the URL says."""
    status = state.take_refusal()
    if status is not None:
        return conn.respond(status, "Service Unavailable\n")
    query = parse_qs(urlsplit(request.path).query)
    app_id = query.get("app_id", [""])[0]
    conn.app_id_ok = app_id.isdigit()  # type: ignore[attr-defined]
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
    session = Session(
        conn,
        getattr(conn, "number", 0),
        bool(getattr(conn, "app_id_ok", True)),
        lambda: state.stalled,
        lambda: state.delay,
    )
    with state.lock:
        if state.stopping.is_set():
            return
        state.sessions.add(session)
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
