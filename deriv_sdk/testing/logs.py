"""The logger handed to websockets, which must never log what clients send.

websockets logs every frame at DEBUG (``< TEXT '{"authorize": "..."}'``), and some of its
INFO/ERROR records carry an exception whose text may quote the request line (the handshake
URL, with its ``otp``). A user who turns on DEBUG logging globally (``deriv-sdk --local -v``,
``logging.basicConfig(level=logging.DEBUG)``) must not get tokens, PATs or OTPs in the log.

:class:`QuietLogger` is a :class:`logging.LoggerAdapter` of ``deriv_sdk.testing.websockets``
that websockets sees as "DEBUG off" whatever the real level (so websockets does not even
build its frame records), and that passes on INFO and higher records with their numeric
arguments and HTTP reason phrases only (``connection rejected (401 Unauthorized)``; every
other argument shows as ``<hidden>``) and, of an exception, only its class name.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from http import HTTPStatus
from typing import Any

#: The logger that websockets writes to.
WEBSOCKETS_LOGGER = "deriv_sdk.testing.websockets"


#: HTTP reason phrases ("Unauthorized"): safe to log, unlike other strings.
_PHRASES = frozenset(s.phrase for s in HTTPStatus)


def _is_safe(arg: object) -> bool:
    if isinstance(arg, bool):
        return False
    return isinstance(arg, (int, float)) or (isinstance(arg, str) and arg in _PHRASES)


class QuietLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for websockets that never carries frame contents or request data."""

    def __init__(self, name: str = WEBSOCKETS_LOGGER) -> None:
        super().__init__(logging.getLogger(name), {})

    def isEnabledFor(self, level: int) -> bool:
        """False below INFO: websockets then never builds its per-frame DEBUG records."""
        return level >= logging.INFO and self.logger.isEnabledFor(level)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log ``msg`` when ``level`` is INFO or higher, without anything a client sent.

        Numbers and HTTP reason phrases are kept, other arguments replaced by ``<hidden>``;
        of an exception only the class name is appended, so that a failure stays visible
        without its text.
        """
        if not self.isEnabledFor(level):
            return
        text = str(msg)
        if args:
            safe = tuple(a if _is_safe(a) else "<hidden>" for a in args)
            try:
                text = text % safe
            except (TypeError, ValueError):
                text = f"{text} <hidden>"
        exc_info = kwargs.get("exc_info")
        exc: BaseException | None = None
        if isinstance(exc_info, BaseException):
            exc = exc_info
        elif isinstance(exc_info, tuple) and len(exc_info) == 3:
            exc = exc_info[1]
        elif exc_info:
            exc = sys.exc_info()[1]
        if exc is not None:
            text = f"{text} ({type(exc).__name__})"
        self.logger.log(level, "%s", text, stacklevel=kwargs.get("stacklevel", 1) + 1)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        """Unused: :meth:`log` does all the work (kept for LoggerAdapter's contract)."""
        return msg, kwargs
