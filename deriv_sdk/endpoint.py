"""Endpoints: where each connect attempt goes, and the session steps after a reconnect.

An endpoint is asked, on the io thread before every attempt, for the attempt's ``Target``
(URL and handshake headers), and after a reconnect for the session steps that must run
before anything of the user goes out. ``LegacyEndpoint`` is Deriv's v3 API: a fixed URL (or
a user's URL callable) and the replay of ``authorize`` with the remembered token. The new
API's endpoint (``options.OptionsEndpoint``) fetches a one-time URL before every attempt and
has no session step.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import parse_qs, urlsplit

from .errors import APIError, ConnectError
from .urls import check_ws_url, redact, v3_url

__all__ = [
    "DEFAULT_BRAND",
    "DEFAULT_HOST",
    "DEFAULT_LANGUAGE",
    "Endpoint",
    "LegacyEndpoint",
    "Target",
    "legacy_endpoint",
]


class Default(str):
    """A default argument value that can be told apart from the same value given."""


DEFAULT_HOST = Default("ws.derivws.com")
DEFAULT_LANGUAGE = Default("EN")
DEFAULT_BRAND = Default("deriv")


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

    def next_target(self, deadline: float | None = None) -> Target:
        """The URL and headers of the next attempt (io thread), by ``deadline`` (monotonic).

        Raises:
            ConnectError: The attempt cannot be made (chained to the cause).
        """

    def abort(self) -> None:
        """close(): ends what ``next_target`` may be blocked in (any thread)."""

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

    def next_target(self, deadline: float | None = None) -> Target:
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

    def abort(self) -> None:
        return None  # a URL callable runs to its end (it is the user's code)

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


def legacy_endpoint(
    app_id: int | str | None,
    *,
    endpoint: str,
    url: str | Callable[[], str] | None,
    language: str,
    brand: str,
    headers: Mapping[str, str] | None,
) -> LegacyEndpoint:
    """The v3 endpoint of ``Connection(...)``'s arguments (see ``Connection``).

    Raises:
        ValueError: ``url=`` with ``app_id``/``endpoint``/``language``/``brand``, a URL that is
            not ws(s)://, or an empty value.
    """
    if url is not None:
        given = [
            name
            for name, value, default in (
                ("app_id", app_id, None),
                ("endpoint", endpoint, DEFAULT_HOST),
                ("language", language, DEFAULT_LANGUAGE),
                ("brand", brand, DEFAULT_BRAND),
            )
            if value is not default
        ]
        if given:
            raise ValueError(f"url= replaces the whole URL: do not also give {given}")
        if callable(url):
            return LegacyEndpoint(url, headers)
        check_ws_url(url)
        app_ids = parse_qs(urlsplit(url).query).get("app_id", [])
        return LegacyEndpoint(url, headers, hint_new_api=any(not a.isdigit() for a in app_ids))
    if app_id is None:
        app_id = os.environ.get("DERIV_APP_ID") or 1089
    if isinstance(app_id, bool) or not isinstance(app_id, (int, str)) or app_id == "":
        raise ValueError(f"app_id must be an int or a non-empty str, not {app_id!r}")
    for name, value in (("endpoint", endpoint), ("language", language), ("brand", brand)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty str")
    numeric = str(app_id).isdigit()
    return LegacyEndpoint(
        v3_url(endpoint, app_id, language, brand), headers, hint_new_api=not numeric
    )
