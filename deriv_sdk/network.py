"""The network pieces the WebSocket handshake (``transport``) and the REST client (``rest``)
share: a name lookup that a deadline and an abort hold, and one wording for what went wrong.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["network_reason", "resolve"]


def resolve(
    host: str, port: int, deadline: float, wake: threading.Event, aborted: Callable[[], bool]
) -> list[Any]:
    """``getaddrinfo(host, port)`` for TCP, by ``deadline`` (monotonic).

    An IP address needs no resolver (and no thread). A name is looked up on a short-lived
    ``deriv_sdk-resolve`` thread, because ``getaddrinfo`` cannot be interrupted: the caller
    waits on ``wake`` (which the lookup sets when done, and an abort sets too) and gives up at
    the deadline or on ``aborted()``; the thread ends when the OS resolver returns.

    Raises:
        socket.gaierror: The name does not resolve.
        TimeoutError: ``deadline`` passed.
        ConnectionAbortedError: ``aborted()`` became true.
    """
    try:
        return socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.AI_NUMERICHOST
        )
    except socket.gaierror:
        pass
    result: list[Any] = []
    failure: list[BaseException] = []

    def lookup() -> None:
        try:
            result.extend(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except BaseException as exc:
            failure.append(exc)
        finally:
            wake.set()

    threading.Thread(target=lookup, name="deriv_sdk-resolve", daemon=True).start()
    while not (result or failure):
        if aborted():
            raise ConnectionAbortedError("aborted")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        wake.wait(left)
    if failure:
        raise failure[0]
    return result


def network_reason(exc: BaseException) -> str:
    """A user-facing reason for a failed network operation (DNS, TCP, TLS, a timeout)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__
