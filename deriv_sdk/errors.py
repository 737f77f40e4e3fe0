"""The exception tree of deriv_sdk (stdlib only).

::

    DerivError(Exception)
    ├── APIError                 code, message, details, msg_type, req_id, echo_req
    ├── ConnectError(DerivError, ConnectionError)          could not open the connection
    ├── ConnectionClosedError(DerivError, ConnectionError) closed while waiting; code, reason
    ├── RequestTimeoutError(DerivError, TimeoutError)      no answer in time
    ├── InvalidStateError(DerivError, RuntimeError)        wrong ready_state for the call
    ├── ProtocolError(DerivError, ValueError)              a frame that is not valid JSON
    └── RestError                status, code, message, field, retryable (the new API's REST)

Builtin mixins are used where the meaning matches, so ``except ConnectionError`` or
``except TimeoutError`` catch ours too. Secrets never appear in these messages: an
``echo_req`` from the server already hides ``sensitive`` fields, and we never build
exception text from a request we sent.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "ConnectError",
    "ConnectionClosedError",
    "DerivError",
    "InvalidStateError",
    "ProtocolError",
    "RequestTimeoutError",
    "RestError",
]


class DerivError(Exception):
    """Base class of every exception raised by deriv_sdk."""


class APIError(DerivError):
    """The server answered with an ``error`` object.

    Attributes:
        code: Deriv's error code, e.g. ``"InvalidToken"``.
        message: The server's human-readable message (localised by the ``l`` parameter).
        details: The optional ``details`` object (e.g. the failing field), or None.
        msg_type: The ``msg_type`` of the reply.
        req_id: The ``req_id`` of the reply, when there was one.
        echo_req: The request as echoed by the server (sensitive fields hidden by it).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: Any = None,
        msg_type: str | None = None,
        req_id: int | None = None,
        echo_req: dict[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.details = details
        self.msg_type = msg_type
        self.req_id = req_id
        self.echo_req = echo_req
        super().__init__(code, message)

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> APIError:
        """Builds the error from a Deriv error envelope."""
        error = response.get("error")
        if not isinstance(error, dict):
            error = {}
        req_id = response.get("req_id")
        echo = response.get("echo_req")
        return cls(
            str(error.get("code", "UnknownError")),
            str(error.get("message", "")),
            details=error.get("details"),
            msg_type=response.get("msg_type"),
            req_id=req_id if isinstance(req_id, int) else None,
            echo_req=echo if isinstance(echo, dict) else None,
        )

    def redacted(self, secret: str) -> APIError:
        """The same error with every trace of ``secret`` (a token) replaced.

        Deriv hides ``sensitive`` fields itself; this guards against a server that does not.
        """

        def scrub(value: Any) -> Any:
            if isinstance(value, str):
                return value.replace(secret, "<not shown>")
            if isinstance(value, dict):
                return {k: scrub(v) for k, v in value.items()}
            if isinstance(value, list):
                return [scrub(v) for v in value]
            return value

        return APIError(
            self.code,
            scrub(self.message),
            details=scrub(self.details),
            msg_type=self.msg_type,
            req_id=self.req_id,
            echo_req=scrub(self.echo_req),
        )

    def __str__(self) -> str:
        where = [w for w in (self.msg_type, f"req_id {self.req_id}" if self.req_id else "") if w]
        suffix = f" ({', '.join(where)})" if where else ""
        return f"{self.code}: {self.message}{suffix}"

    def __repr__(self) -> str:
        return f"APIError(code={self.code!r}, message={self.message!r}, req_id={self.req_id!r})"


class ConnectError(DerivError, ConnectionError):
    """The connection could not be opened (DNS, TCP, TLS, or the HTTP handshake).

    Attributes:
        status: The HTTP status of a rejected handshake, else None.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionClosedError(DerivError, ConnectionError):
    """The connection closed while a call was waiting, or before it could be sent.

    Attributes:
        code: The WebSocket close code (1006 for an abrupt drop).
        reason: The close reason, possibly empty.
    """

    def __init__(self, message: str = "connection closed", code: int = 1006, reason: str = ""):
        super().__init__(message)
        self.code = code
        self.reason = reason


class RequestTimeoutError(DerivError, TimeoutError):
    """No answer arrived within the timeout. The pending entry has been removed."""


class InvalidStateError(DerivError, RuntimeError):
    """The call is not allowed in the connection's current ``ready_state``."""


class ProtocolError(DerivError, ValueError):
    """The server sent a frame that is not valid JSON text.

    Attributes:
        payload: The frame as received: ``str`` for a text frame, ``bytes`` for a binary one.
    """

    def __init__(self, message: str, payload: str | bytes = b"") -> None:
        super().__init__(message)
        self.payload = payload


class RestError(DerivError):
    """An HTTP error reply of Deriv's REST API (the new API: accounts, OTP, health).

    Attributes:
        status: The HTTP status, e.g. 401.
        code: Deriv's error code from ``errors[0].code`` (e.g. ``"Unauthorized"``), or None when
            the body is not Deriv's error envelope.
        message: Deriv's message from ``errors[0].message``, else the HTTP reason phrase.
        field: ``errors[0].field`` when Deriv names the offending field, else None.
        retryable: True for 429 and 5xx (retrying later may help), else False (also True
            for a success reply without what it must carry: a server fault).
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        field: str | None = None,
        *,
        retryable: bool | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retryable = (status == 429 or status >= 500) if retryable is None else retryable
        super().__init__(status, code, message)

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        where = f" (field {self.field})" if self.field else ""
        return f"HTTP {self.status}{code}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"RestError(status={self.status!r}, code={self.code!r}, message={self.message!r})"
