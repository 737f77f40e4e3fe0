"""The new API's accounts (one user per PAT) and its one-time passwords (pure logic, no I/O).

Account ids are derived from the PAT with SHA-256 (``"DOT"`` and 8 digits, the shape of the
docs' ``DOT90004580``), so a PAT has the same demo account in every process: a test, the
server it starts, and a ``deriv-sdk serve`` in another terminal agree on it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: The balance of a new demo account, and what ``reset-demo-balance`` puts back.
DEMO_BALANCE = 10000.0

#: Most OTPs waiting to be used (the oldest go first beyond it).
MAX_OTPS = 10_000

ACCOUNT_TYPES = ("demo", "real")
STATUSES = ("active", "inactive")


@dataclass
class OptionsAccount:
    """An account of the new API (``OptionsAccount`` in Deriv's OpenAPI).

    ``loginid`` is the ``account_id``: the new API's ``balance.loginid`` and the key the
    shared trading code uses for every account.
    """

    account_id: str
    pat: str = field(repr=False)
    balance: float = DEMO_BALANCE
    currency: str = "USD"
    group: str = "row"
    status: str = "active"
    account_type: str = "demo"

    @property
    def loginid(self) -> str:
        """The account id (what the new API reports as ``loginid``)."""
        return self.account_id

    @property
    def is_virtual(self) -> int:
        """1 for a demo account, else 0."""
        return 1 if self.account_type == "demo" else 0

    def payload(self) -> dict[str, Any]:
        """The account as REST returns it."""
        return {
            "account_id": self.account_id,
            "balance": round(self.balance, 2),
            "currency": self.currency,
            "group": self.group,
            "status": self.status,
            "account_type": self.account_type,
        }


def derive_account_id(pat: str, n: int = 0) -> str:
    """The ``n``-th account id of ``pat``: ``"DOT"`` + 8 digits of a SHA-256 of the PAT."""
    seed = pat if n == 0 else f"{pat}\x00{n}"
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()
    return f"DOT{int(digest, 16) % 10**8:08d}"


_FIELDS = {"account_id", "balance", "currency", "group", "status", "account_type"}


def make_pat_accounts(
    pats: list[str] | dict[str, list[dict[str, Any]]] | None, taken: set[str]
) -> dict[str, list[OptionsAccount]]:
    """Build the PAT -> accounts table from the ``pats`` argument of the server.

    Args:
        pats: a list of PATs (each gets one demo account with 10,000 USD) or a dict PAT ->
            list of account dicts (``account_id``, ``balance``, ``currency``, ``group``,
            ``status``, ``account_type``; any may be left out).
        taken: ids already in use (v3 loginids); the ids made here are added to it.

    Raises:
        ValueError: an unknown field, a bad ``account_type``/``status``, or an id used twice.
    """
    if pats is None:
        return {}
    out: dict[str, list[OptionsAccount]] = {}
    items: list[tuple[str, list[dict[str, Any]]]] = (
        list(pats.items()) if isinstance(pats, dict) else [(p, [{}]) for p in pats]
    )
    for pat, specs in items:
        if not isinstance(pat, str) or not pat:
            raise ValueError("a PAT must be a non-empty string")
        accounts = []
        for spec in specs:
            unknown = set(spec) - _FIELDS
            if unknown:
                raise ValueError(f"unknown account fields for a PAT: {sorted(unknown)}")
            account_id = spec.get("account_id") or new_account_id(pat, taken)
            if account_id in taken:
                raise ValueError(f"account id {account_id!r} is used twice")
            account = OptionsAccount(
                account_id=str(account_id),
                pat=pat,
                balance=float(spec.get("balance", DEMO_BALANCE)),
                currency=str(spec.get("currency", "USD")),
                group=str(spec.get("group", "row")),
                status=str(spec.get("status", "active")),
                account_type=str(spec.get("account_type", "demo")),
            )
            if account.account_type not in ACCOUNT_TYPES:
                raise ValueError(f"account_type must be one of {ACCOUNT_TYPES}")
            if account.status not in STATUSES:
                raise ValueError(f"status must be one of {STATUSES}")
            taken.add(account.account_id)
            accounts.append(account)
        out[pat] = accounts
    return out


def new_account_id(pat: str, taken: set[str]) -> str:
    """The first id derived from ``pat`` that is not in ``taken`` (deterministic)."""
    n = 0
    while derive_account_id(pat, n) in taken:
        n += 1
    return derive_account_id(pat, n)


@dataclass
class _Otp:
    account_id: str
    account_type: str
    expires: float


class OtpStore:
    """One-time passwords: each valid ``ttl`` seconds, for one account, usable once.

    Args:
        ttl: seconds an OTP stays valid.
        clock: the monotonic clock (tests replace it to move time).

    Not thread-safe: call it with the server's state lock held.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not ttl > 0:
            raise ValueError("otp_ttl must be positive")
        self.ttl = float(ttl)
        self.clock = clock
        self._otps: dict[str, _Otp] = {}

    def issue(self, account: OptionsAccount) -> str:
        """A fresh OTP for ``account``."""
        now = self.clock()
        for otp in [k for k, v in self._otps.items() if v.expires <= now]:
            del self._otps[otp]
        while len(self._otps) >= MAX_OTPS:
            del self._otps[next(iter(self._otps))]
        otp = secrets.token_urlsafe(24)
        self._otps[otp] = _Otp(account.account_id, account.account_type, now + self.ttl)
        return otp

    def redeem(self, otp: str, account_type: str) -> str | None:
        """Use ``otp`` on the socket path of ``account_type`` (``demo`` or ``real``).

        The OTP is spent whatever the outcome: a used, expired or unknown OTP, or one for an
        account of the other type, gives None. Deriv does not say whether a refused
        handshake spends it; spending it is the safe reading of "usable once".

        Returns:
            The account id the OTP was issued for, or None.
        """
        entry = self._otps.pop(otp, None)
        if entry is None or entry.expires <= self.clock() or entry.account_type != account_type:
            return None
        return entry.account_id

    def __len__(self) -> int:
        return len(self._otps)
