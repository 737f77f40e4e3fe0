"""What went wrong on the network, said for a person: one wording for the WebSocket handshake
(``transport``) and the REST client (``rest``)."""

from __future__ import annotations

import socket
import ssl

__all__ = ["network_reason"]


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
