"""URLs, pure: Deriv's v3 URL, scheme checks, and redaction of the secrets a URL may carry.

A URL can hold two secrets: a password in its userinfo (``wss://bob:secret@host/``) and the new
API's one-time password (``...?otp=...``). ``redact`` replaces both; every URL that reaches a
log record, a ``repr()``, an exception text or ``Connection.url`` goes through it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "check_ws_url", "host_of", "redact", "v3_url"]

REDACTED = "<redacted>"
_SECRET_PARAMS = frozenset({"otp"})


def v3_url(endpoint: str, app_id: int | str, language: str, brand: str) -> str:
    """``wss://{endpoint}/websockets/v3?app_id=..&l=..&brand=..``, each value URL-encoded."""
    query = urlencode({"app_id": str(app_id), "l": language.upper(), "brand": brand.lower()})
    return f"wss://{endpoint}/websockets/v3?{query}"


def check_ws_url(url: object) -> str:
    """Returns ``url`` when it is a ``ws://`` or ``wss://`` URL with a host.

    Raises:
        TypeError: ``url`` is not a str.
        ValueError: Another scheme, or no host.
    """
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("ws", "wss"):
        raise ValueError(f"url must start with ws:// or wss://, not {scheme or url[:10]!r}")
    if not urlsplit(url).hostname:
        raise ValueError("url has no host")
    return url


def host_of(url: str) -> str:
    """``host[:port]`` of ``url``, without userinfo (for messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def redact(url: str | None) -> str | None:
    """``url`` with a userinfo password and the ``otp`` query value replaced by ``<redacted>``."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{REDACTED}@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(k in _SECRET_PARAMS for k, _ in pairs):
                query = "&".join(
                    f"{quote(k)}={REDACTED if k in _SECRET_PARAMS else quote(v)}" for k, v in pairs
                )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # unparsable (a bad port...): show nothing that could be a secret
        return f"{url.split(':', 1)[0]}://{REDACTED}"
