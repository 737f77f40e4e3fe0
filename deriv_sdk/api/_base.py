"""The hand-written part of ``LegacyAPI`` and ``OptionsAPI``: how a typed call reaches the
connection. The generated methods build the payload and call :meth:`BaseAPI._call`, which is
``conn.request()`` or, with a listener, ``conn.subscribe()``: there is no second request path.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from deriv_sdk.connection import Connection
    from deriv_sdk.subscriptions import Subscription

__all__ = ["OMIT", "BaseAPI", "Omit", "payload_of"]


class Omit(enum.Enum):
    """The type of :data:`OMIT`."""

    OMIT = "OMIT"

    def __repr__(self) -> str:
        return "OMIT"


#: The default of a parameter whose schema allows null: the field is left out of the
#: request, while None sends null (e.g. ``set_self_exclusion(max_balance=None)``).
OMIT: Final = Omit.OMIT


def payload_of(
    fields: Mapping[str, Any], nullable: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The request: ``fields`` without the None values (not given), and ``nullable`` without
    the ``OMIT`` ones (None there is sent as null)."""
    payload = {key: value for key, value in fields.items() if value is not None}
    if nullable:
        payload.update((k, v) for k, v in nullable.items() if v is not OMIT)
    return payload


class BaseAPI:
    """Wraps a :class:`~deriv_sdk.Connection`; the generated subclasses add one method per
    call. Safe from any thread, as the connection is."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        """Args:
        conn: The connection to send through (connected or not yet: as ``request()``).
        """
        self._conn = conn

    @property
    def connection(self) -> Connection:
        """The wrapped connection."""
        return self._conn

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._conn!r})"

    def _call(
        self,
        payload: dict[str, Any],
        timeout: float | None,
        listener: Callable[[Any], object] | None = None,
        on_end: Callable[[Subscription], object] | None = None,
    ) -> Any:
        if listener is None:
            if on_end is not None:
                raise TypeError("on_end= needs listener=")
            return self._conn.request(payload, timeout)
        if on_end is None:
            return self._conn.subscribe(payload, listener, timeout)
        # Passed by keyword through a dict: Connection.subscribe() gains on_end= in the client
        # core's rebuild, and this module must work with the core before and after it.
        extra: dict[str, Any] = {"on_end": on_end}
        return self._conn.subscribe(payload, listener, timeout, **extra)

    # authorize, forget and forget_all keep the connection's bookkeeping (the token for
    # reconnects, the local Subscriptions): Connection's own methods, with every field.

    def _authorize(self, payload: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        fields = {k: v for k, v in payload.items() if k != "authorize"}
        return self._conn.authorize(payload["authorize"], timeout, **fields)

    def _forget(self, payload: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        fields = {k: v for k, v in payload.items() if k != "forget"}
        return self._conn.forget(payload["forget"], timeout, **fields)

    def _forget_all(self, payload: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        value = payload["forget_all"]
        types = (value,) if isinstance(value, str) else tuple(value)
        fields = {k: v for k, v in payload.items() if k != "forget_all"}
        return self._conn._forget_all(types, timeout, fields)
