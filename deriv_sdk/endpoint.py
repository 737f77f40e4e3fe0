"""Endpoints: where each connect attempt goes, and the session steps after a reconnect.

An endpoint is asked, on the io thread before every attempt, for the attempt's ``Target``
(URL and handshake headers), and after a reconnect for the session steps that must run
before anything of the user goes out. ``LegacyEndpoint`` is Deriv's v3 API: a fixed URL (or
a user's URL callable) and the replay of ``authorize`` with the remembered token. The new
API's endpoint (``options.OptionsEndpoint``) fetches a one-time URL before every attempt and
has no session step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from .errors import APIError, ConnectError
from .urls import check_ws_url, redact

__all__ = ["Endpoint", "LegacyEndpoint", "Target"]


class Target(NamedTuple):
    """What one connect attempt opens."""

    url: str
    headers: Mapping[str, str]


class Requests(Protocol):
    """The part of ``outbound.Outbound`` that session steps use."""

    def call(self, link: Any, payload: Mapping[str, Any], deadline: float | None) -> Any: ...


class Endpoint(Protocol):
    """What a connection asks of its endpoint (see the module docstring)."""

    api: str  # "legacy" or "options"

    @property
    def url(self) -> str | None:
        """The URL to show (``Connection.url``): redacted; None before the first attempt."""

    def next_target(self) -> Target:
        """The URL and headers of the next attempt (io thread).

        Raises:
            ConnectError: The attempt cannot be made (chained to the cause).
        """

    def retry_at_once(self, error: ConnectError, retries: int) -> bool:
        """True when a refused handshake should be tried again at once (``retries`` so far
        in this attempt), with a fresh ``next_target()``."""

    def restore(self, requests: Requests, link: Any, deadline: float | None) -> None:
        """The session steps after a reconnect, on ``link`` (restore thread).

        Raises:
            APIError: A step was refused (reported; restoring goes on).
            RequestTimeoutError, ConnectionClosedError: As ``Outbound.call``.
        """

    def authorize_allowed(self) -> bool:
        """Whether the ``authorize`` call exists on this API."""

    def remember(self, token: str) -> None:
        """``authorize(token)`` succeeded."""

    def logged_out(self) -> None:
        """A ``logout`` succeeded: no reconnect may log the session back in."""

    def explain(self) -> dict[str, str]:
        """Extra text per ``APIError`` code (e.g. a hint for ``InvalidAppID``)."""


class LegacyEndpoint:
    """Deriv's v3 API (the "Legacy API").

    Args:
        url: The URL, or a zero-argument callable returning it (called before every attempt).
        headers: Extra handshake headers.
        hint_new_api: Add to ``InvalidAppID`` that new app ids need ``Connection.options``
            (the app id given is not a number, the shape of a new-API app id).
    """

    api = "legacy"

    def __init__(
        self,
        url: str | Callable[[], str],
        headers: Mapping[str, str] | None = None,
        hint_new_api: bool = False,
    ) -> None:
        self._url = url
        self._headers = dict(headers or {})
        self._last: str | None = url if isinstance(url, str) else None
        self._token: str | None = None
        self._lock = threading.Lock()
        self._hint_new_api = hint_new_api

    @property
    def url(self) -> str | None:
        return redact(self._last)

    def next_target(self) -> Target:
        if isinstance(self._url, str):
            return Target(self._url, self._headers)
        try:
            url = check_ws_url(self._url())
        except Exception as exc:
            raise ConnectError(
                f"cannot connect: the url callable failed ({type(exc).__name__}: {exc})"
            ) from exc
        self._last = url
        return Target(url, self._headers)

    def retry_at_once(self, error: ConnectError, retries: int) -> bool:
        return False

    def restore(self, requests: Requests, link: Any, deadline: float | None) -> None:
        token = self._token
        if token is None:
            return
        try:
            requests.call(link, {"authorize": token}, deadline)
        except APIError as exc:
            raise exc.redacted(token) from None

    def authorize_allowed(self) -> bool:
        return True

    def remember(self, token: str) -> None:
        with self._lock:
            self._token = token

    def logged_out(self) -> None:
        with self._lock:
            self._token = None

    def explain(self) -> dict[str, str]:
        if not self._hint_new_api:
            return {}
        return {
            "InvalidAppID": (
                "(The app id is not a number: app ids from Deriv's developer dashboard work "
                "only with Deriv's new API; use Connection.options(...) for it.)"
            )
        }
