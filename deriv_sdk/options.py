"""Deriv's new API ("options" trading): the endpoint behind ``Connection.options``.

Three sockets: ``/trading/v1/options/ws/public`` (market data, no credential) and
``/ws/demo?otp=...`` / ``/ws/real?otp=...``, whose one-time URL comes from the REST call
``POST /trading/v1/options/accounts/{id}/otp`` (``RestClient.otp_url``). A one-time URL works
once and for 120 s, so an account's endpoint fetches a fresh one before **every** connect
attempt, on the io thread, and never opens one URL twice. The envelope is v3's; there is no
``authorize`` call and no session step after a reconnect (the subscriptions are restored as
for v3).

Which failures are retried (``lifecycle.RetryPolicy``): a handshake refused with 401 (an
expired or used one-time password) is tried again at once with a new one, once per attempt;
a ``RestError`` that retrying cannot fix (any 4xx but 429) ends the connection; 429, 5xx and
network failures are retried with backoff.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping
from typing import Any

from .endpoint import Requests, Target
from .errors import ConnectError, RestError
from .rest import Cancel, RestClient
from .urls import check_ws_url, host_of, redact

__all__ = ["DEFAULT_HOST", "OptionsEndpoint", "options_endpoint", "public_url"]

#: The new API's host (both REST and the sockets).
DEFAULT_HOST = "api.derivws.com"


#: How many of the one-time URLs opened are remembered (never opened again).
USED_KEPT = 64


def public_url(endpoint: str) -> str:
    """The public socket of the new API on host ``endpoint``."""
    return f"wss://{endpoint}/trading/v1/options/ws/public"


class OptionsEndpoint:
    """The new API: the public socket, or one account's socket through one-time URLs.

    Args:
        url: The public socket's URL (no account), or None.
        rest: The REST client (with an account).
        account_id: The account (None: the public socket).
        headers: Extra handshake headers.
    """

    api = "options"

    def __init__(
        self,
        *,
        url: str | None = None,
        rest: RestClient | None = None,
        account_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if account_id is None:
            if url is None:
                raise ValueError("the public socket needs a URL")
            check_ws_url(url)
        elif rest is None:
            raise ValueError("an account's connection needs rest=RestClient(...)")
        self._url = url
        self._rest = rest
        self._account_id = account_id
        self._headers = dict(headers or {})
        self._last: str | None = url
        self._used: collections.deque[str] = collections.deque(maxlen=USED_KEPT)
        self._lock = threading.Lock()
        self._cancel = Cancel()  # close() ends a REST call in flight

    @property
    def url(self) -> str | None:
        return redact(self._last)

    def next_target(self, deadline: float | None = None) -> Target:
        if self._account_id is None:
            assert self._url is not None
            return Target(self._url, self._headers)
        assert self._rest is not None
        timeout = self._rest.timeout  # ... and never beyond the attempt's deadline
        if deadline is not None:
            timeout = max(0.001, min(timeout, deadline - time.monotonic()))
        try:
            url = self._rest.otp_url(self._account_id, timeout=timeout, cancel=self._cancel)
        except RestError as exc:
            raise ConnectError(
                f"cannot get a one-time URL for account {self._account_id}: {exc}"
            ) from exc
        except ConnectError:
            raise
        except Exception as exc:  # e.g. the token callable failed
            raise ConnectError(
                f"cannot get a one-time URL for account {self._account_id}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        with self._lock:
            if url in self._used:  # a one-time URL works once: never open one twice
                raise ConnectError(
                    f"the one-time URL from {host_of(url)} was used before; not opening it again"
                )
            self._used.append(url)
            self._last = url
        return Target(url, self._headers)

    def retry_at_once(self, error: ConnectError, retries: int) -> bool:
        """A 401 at the handshake (expired or used one-time password): once more at once."""
        return self._account_id is not None and error.status == 401 and retries == 0

    def restore(self, requests: Requests, link: Any, deadline: float | None) -> None:
        return None  # the one-time URL authenticated the socket: nothing to replay

    def authorize_allowed(self) -> bool:
        return False

    def remember(self, token: str) -> None:
        return None

    def logged_out(self) -> None:
        return None

    def explain(self) -> dict[str, str]:
        return {}

    def abort(self) -> None:
        """close(): ends a REST call in flight (and any later one)."""
        self._cancel.abort()


def options_endpoint(
    account_id: str | None,
    *,
    rest: RestClient | None,
    endpoint: str,
    url: str | None,
    headers: Mapping[str, str] | None,
) -> OptionsEndpoint:
    """The endpoint of ``Connection.options(...)``'s arguments.

    Raises:
        ValueError: ``account_id`` without ``rest``, or with ``url``.
    """
    if account_id is None:
        if url is not None and endpoint != DEFAULT_HOST:
            raise ValueError("url= replaces the whole URL: do not also give endpoint=")
        return OptionsEndpoint(url=public_url(endpoint) if url is None else url, headers=headers)
    if rest is None:
        raise ValueError("Connection.options(account_id=...) needs rest=RestClient(...)")
    if url is not None:
        raise ValueError("an account's URL is a one-time URL from rest: do not give url=")
    if not isinstance(account_id, str) or not account_id:
        raise ValueError("account_id must be a non-empty str")
    return OptionsEndpoint(rest=rest, account_id=account_id, headers=headers)
