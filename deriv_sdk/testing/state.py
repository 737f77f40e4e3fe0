"""``ServerState``: everything the request handlers, the REST handler and the tick scheduler
share, handed to them instead of the whole :class:`~deriv_sdk.testing.LocalServer`.

Two locks guard it:

- :attr:`ServerState.lock` (re-entrant) guards the market, the accounts of both APIs, the
  contracts, the proposals, the statements, the OTPs and the set of sessions. Every
  handler runs with it held; the scheduler holds it for one tick of every symbol.
- a private lock guards the observability logs (:meth:`ServerState.requests`, ...) and the
  fault settings, so that reading them never waits for a handler.

Nothing here does I/O or starts a thread.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from deriv_sdk.testing.accounts import Account, Contract, Quote, make_accounts
from deriv_sdk.testing.market import Market
from deriv_sdk.testing.pats import OptionsAccount, OtpStore, make_pat_accounts
from deriv_sdk.testing.session import Session

#: An account of either API (the trading code works on both).
AnyAccount = Account | OptionsAccount

#: The observability logs (:meth:`ServerState.requests`, ...) keep the last this many entries
#: (a server that runs for days in the foreground must not grow without bound).
MAX_LOG = 100_000

#: Statement entries kept per account.
MAX_STATEMENT = 10_000


@dataclass
class ProposalEntry:
    """A proposal id that ``buy`` accepts: its price, its connection, its expiry."""

    quote: Quote
    session: Session
    expires: float | None  # time.monotonic() deadline; None while its stream lives


class ServerState:
    """The shared state of one server.

    Args:
        tokens: v3 tokens (see :class:`~deriv_sdk.testing.LocalServer`).
        seed: seed of the market's random walk.
        rate_limits: call name -> most requests per minute per connection.
        pats: the new API's PATs (see :class:`~deriv_sdk.testing.LocalServer`).
        otp_ttl: seconds an OTP stays valid.
    """

    def __init__(
        self,
        tokens: list[str] | dict[str, dict[str, Any]] | None = None,
        seed: int | None = None,
        rate_limits: dict[str, int] | None = None,
        pats: list[str] | dict[str, list[dict[str, Any]]] | None = None,
        otp_ttl: float = 120.0,
    ) -> None:
        self.rate_limits: dict[str, int] = dict(rate_limits or {})
        if any(not isinstance(v, int) or v < 1 for v in self.rate_limits.values()):
            raise ValueError("rate_limits values must be positive integers")
        # Guarded by ``lock``.
        self.lock = threading.RLock()
        self.market = Market(seed)
        self.accounts: dict[str, Account] = make_accounts(tokens)
        self.accounts_by_login: dict[str, AnyAccount] = {
            a.loginid: a for a in self.accounts.values()
        }
        #: The new API: PAT -> its accounts; every account is also in ``accounts_by_login``.
        self.pat_accounts: dict[str, list[OptionsAccount]] = make_pat_accounts(
            pats, set(self.accounts_by_login)
        )
        for accounts in self.pat_accounts.values():
            for account in accounts:
                self.accounts_by_login[account.account_id] = account
        self.otps = OtpStore(otp_ttl)
        #: loginid -> its statement entries (``statement`` rows), oldest first.
        self.statements: dict[str, deque[dict[str, Any]]] = {}
        self.contracts: dict[int, Contract] = {}
        self.proposals: dict[str, ProposalEntry] = {}
        self.sessions: set[Session] = set()
        # Fault settings: events are thread-safe on their own; the rest under ``_meta``.
        self.running = threading.Event()  # cleared while stalled
        self.running.set()
        self.stopping = threading.Event()
        self._meta = threading.Lock()
        self._delay = 0.0
        self._refuse_count = 0
        self._refuse_status = 503
        self._requests: deque[dict[str, Any]] = deque(maxlen=MAX_LOG)
        self._rest_requests: deque[dict[str, Any]] = deque(maxlen=MAX_LOG)
        self._handshakes: deque[dict[str, Any]] = deque(maxlen=MAX_LOG)

    # -- sessions ----------------------------------------------------------------------

    def sessions_snapshot(self) -> list[Session]:
        """The open sessions (call with :attr:`lock` held)."""
        return list(self.sessions)

    def sessions_copy(self) -> list[Session]:
        """The open sessions (takes :attr:`lock`)."""
        with self.lock:
            return list(self.sessions)

    # -- faults ------------------------------------------------------------------------

    @property
    def stalled(self) -> bool:
        """Whether :meth:`~deriv_sdk.testing.LocalServer.stall` is in force."""
        return not self.running.is_set()

    @property
    def delay(self) -> float:
        """Seconds every answer is delayed by (0: none)."""
        return self._delay

    def set_delay(self, seconds: float) -> None:
        """Delay every answer queued from now on by ``seconds``."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        self._delay = float(seconds)

    def refuse(self, count: int, status: int) -> None:
        """Make the next ``count`` HTTP requests (handshakes or REST) get ``status``."""
        if count < 0:
            raise ValueError("count must be >= 0")
        if not 400 <= status <= 599 or status not in {s.value for s in HTTPStatus}:
            raise ValueError("status must be a known HTTP error status (400-599)")
        with self._meta:
            self._refuse_count = count
            self._refuse_status = status

    def take_refusal(self) -> int | None:
        """The status to refuse this HTTP request with, or None (counts it down)."""
        with self._meta:
            if self._refuse_count <= 0:
                return None
            self._refuse_count -= 1
            return self._refuse_status

    # -- observability -------------------------------------------------------------------

    def record_request(self, request: dict[str, Any]) -> None:
        """Log one WebSocket request, as received."""
        with self._meta:
            self._requests.append(request)

    def requests(self) -> list[dict[str, Any]]:
        """A copy of the WebSocket requests log."""
        with self._meta:
            return list(self._requests)

    def record_rest(self, method: str, path: str, status: int) -> None:
        """Log one REST request (method, path without the query, status; no header)."""
        with self._meta:
            self._rest_requests.append({"method": method, "path": path, "status": status})

    def rest_requests(self) -> list[dict[str, Any]]:
        """A copy of the REST requests log."""
        with self._meta:
            return [dict(r) for r in self._rest_requests]

    def record_handshake(self, api: str, path: str, status: int, otp: str | None) -> None:
        """Log one WebSocket handshake (path without the query)."""
        with self._meta:
            self._handshakes.append({"api": api, "path": path, "status": status, "otp": otp})

    def handshakes(self) -> list[dict[str, Any]]:
        """A copy of the handshakes log."""
        with self._meta:
            return [dict(h) for h in self._handshakes]

    # -- accounts (call with ``lock`` held) ---------------------------------------------

    def account_of(self, pat: str, account_id: str) -> OptionsAccount | None:
        """The account ``account_id`` of the user of ``pat``, or None."""
        for account in self.pat_accounts.get(pat, ()):
            if account.account_id == account_id:
                return account
        return None

    def add_statement(self, loginid: str, entry: dict[str, Any]) -> None:
        """Append a ``statement`` row to the account's statement."""
        rows = self.statements.setdefault(loginid, deque(maxlen=MAX_STATEMENT))
        rows.append(entry)
