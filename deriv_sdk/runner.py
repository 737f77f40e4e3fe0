"""The io thread: connect attempts, the read loop, drops, backoff, and the restore thread.

Threads (all daemon, so a forgotten connection never keeps the interpreter alive; ``close()``
joins them all the same):

- ``deriv_sdk-io-N`` makes each attempt (``Endpoint.next_target``, then ``Handshake``), reads
  the link until it ends (``reader.Reader``), handles the drop, waits out the backoff. It never
  runs user code and never blocks on a send.
- ``deriv_sdk-restore-N``, only after a reconnect: the endpoint's session steps (v3:
  ``authorize``), then the re-subscribes, then OPEN and the ``open`` event. Bound to the link
  it restores: it sends on that link only, and aborts only that link.

Every event is handed to the dispatch thread in order; the last is ``close`` with
``will_reconnect=False``, after which the dispatcher stops.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any

from .dispatch import Dispatcher
from .endpoint import Endpoint
from .errors import APIError, ConnectError, ConnectionClosedError, InvalidStateError
from .events import CloseEvent, ErrorEvent, OpenEvent
from .keepalive import Keepalive
from .lifecycle import Lifecycle, Phase, RetryPolicy
from .link import Link
from .outbound import Outbound
from .reader import Reader
from .streams import RestoreIncomplete, Streams
from .subscriptions import SubscriptionRegistry
from .transport import Handshake

__all__ = ["Runner", "SessionEvents", "link_dead"]

logger = logging.getLogger("deriv_sdk.connection")

CLOSE_SEND_WAIT = 0.5  # close(): the most it waits to get its close frame out
CLOSE_ECHO_WAIT = 1.0  # ... then for the server's answer to it (from the start of close())
CLOSE_BUDGET = 1.4  # ... and for everything, a stuck listener included (it gets at most 1 s)
RESTORE_JOIN = 1.0  # the end waits this long for a restore thread (its link is gone: quick)
HANDOVER_WAIT = 1.0  # the restore waits at most this long for the reader to hand over a read


def link_dead(link: Link) -> None:
    """The keepalive's verdict (a timer thread): the reader sees the end and reconnects."""
    link.abort("keepalive timeout")


class SessionEvents:
    """What the router tells about the session, passed on to the endpoint and the policy."""

    def __init__(self, endpoint: Endpoint, policy: RetryPolicy) -> None:
        self._endpoint = endpoint
        self._policy = policy

    def logged_out(self) -> None:
        self._endpoint.logged_out()

    def refused(self, error: APIError) -> bool:
        return self._policy.refuse(error)


class Runner:
    """The io thread of one connection and what it drives (see the module docstring).

    Args:
        target: The Connection (the ``target`` of events).
        name: The thread name suffix (``N``).
        lifecycle, policy, endpoint, outbound, streams, registry, dispatcher, reader,
        keepalive: The connection's parts.
        attempt_timeout: Seconds for one attempt (DNS, TCP, TLS, upgrade) and for the
            restore's answers; None: no limit.
        ssl_context: For ``wss://``.
    """

    def __init__(
        self,
        target: Any,
        name: str,
        lifecycle: Lifecycle,
        policy: RetryPolicy,
        endpoint: Endpoint,
        outbound: Outbound,
        streams: Streams,
        registry: SubscriptionRegistry,
        dispatcher: Dispatcher,
        reader: Reader,
        keepalive: Keepalive | None,
        attempt_timeout: float | None,
        ssl_context: Any,
    ) -> None:
        self._target = target
        self._name = name
        self._lc = lifecycle
        self._policy = policy
        self._endpoint = endpoint
        self._outbound = outbound
        self._streams = streams
        self._registry = registry
        self._dispatcher = dispatcher
        self._reader = reader
        self._keepalive = keepalive
        self._attempt_timeout = attempt_timeout
        self._ssl_context = ssl_context
        self.first_deadline: float | None = None  # connect(timeout=...): bounds the first
        self.last_failure: ConnectError | None = None
        self._final_close_posted = False
        self._last_close: tuple[int, str, bool] | None = None  # of the link that ended last
        self.done = threading.Event()
        self.done.set()
        self._thread: threading.Thread | None = None
        self._restorers: list[threading.Thread] = []
        self._restorers_lock = threading.Lock()

    # -- lifetime (caller's thread) ------------------------------------------------------------

    def begin(self, timeout: float | None, retry: bool) -> None:
        """``connect()``: NEW -> CONNECTING, and the io thread (started under the lifecycle
        lock, so that close() sees either no thread or a started one).

        Raises:
            InvalidStateError: Not NEW.
        """
        lc = self._lc
        with lc.lock:
            if lc.phase is not Phase.NEW:
                raise InvalidStateError("connect() can be called once per Connection")
            self._policy.retry_first = bool(retry)
            self.first_deadline = None if timeout is None else time.monotonic() + timeout
            lc.phase = Phase.CONNECTING
            self.done.clear()
            name = f"deriv_sdk-io-{self._name}"
            thread = threading.Thread(target=self._main, name=name, daemon=True)
            thread.start()
            self._thread = thread

    def wait_first_open(self, deadline: float | None) -> bool:
        """Blocks until the connection has opened (True) or ended / ``deadline`` (False).

        Opened at all counts: an ``open`` listener may have closed it again already.
        """
        lc = self._lc
        with lc.lock:
            while not lc.ever_opened and lc.phase is not Phase.CLOSED:
                remaining = (
                    threading.TIMEOUT_MAX if deadline is None else deadline - time.monotonic()
                )
                if remaining <= 0:
                    break
                lc.lock.wait(min(remaining, threading.TIMEOUT_MAX))
            return lc.ever_opened

    def close(self, code: int, reason: str) -> None:
        """``close()``: see there. Within ``CLOSE_BUDGET`` seconds, whatever the phase."""
        start = time.monotonic()
        first, handshake, link, started = self._lc.request_close(code, reason)
        if first:
            self._endpoint.abort()
            if handshake is not None:
                handshake.abort()
            if link is not None:  # first: it aborts a link stuck in a send, freeing the rest
                link.send_close(code, reason, wait=CLOSE_SEND_WAIT)
            if self._keepalive is not None:
                self._keepalive.stop()
            if not started:
                self.finish_unstarted()
        if not self.join(max(0.0, start + CLOSE_ECHO_WAIT - time.monotonic())):
            # No answer to our close frame in time: end the TCP connection ourselves.
            for stale in (link, self._lc.link):
                if stale is not None:
                    stale.abort("closed by close()")
            self.join(max(0.1, start + CLOSE_BUDGET - 0.1 - time.monotonic()))
        if self.done.is_set() and not self._dispatcher.on_thread():
            budget = max(0.1, min(1.0, start + CLOSE_BUDGET - time.monotonic()))
            if not self._dispatcher.join(budget):
                logger.warning(
                    "close(): a listener is still running after %.1fs; returning without it "
                    "(the dispatch thread ends when the listener returns)",
                    time.monotonic() - start,
                )

    def wait_closed(self, timeout: float | None) -> bool:
        """``wait()``: until CLOSED and the last events have run (True), or ``timeout``."""
        if timeout is not None:
            timeout = min(timeout, threading.TIMEOUT_MAX)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.done.wait(timeout):
            return False
        if self._dispatcher.on_thread():
            return True  # from a listener: the dispatch thread cannot wait for itself
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self._dispatcher.finished.wait(remaining)

    def finish_unstarted(self) -> None:
        """close() before connect(): end the parts as the io thread would have (no events:
        nothing ever happened)."""
        self._final_close_posted = True
        self._finish()

    def join(self, timeout: float) -> bool:
        """Waits for the io thread (and the restore threads) to end; False if still alive."""
        deadline = time.monotonic() + timeout
        current = threading.current_thread()
        thread = self._thread
        if thread is not None and thread is not current:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._join_restorers(max(0.0, deadline - time.monotonic()))
        alive = thread is not None and thread is not current and thread.is_alive()
        return not alive

    def _join_restorers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        current = threading.current_thread()
        with self._restorers_lock:
            restorers = list(self._restorers)
        for restorer in restorers:
            if restorer is not current:
                restorer.join(max(0.0, deadline - time.monotonic()))

    @property
    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    # -- the io thread ---------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._loop()
        except BaseException:  # a bug of ours: never leave a caller waiting because of it
            logger.exception("internal error in the io thread")
        finally:
            self._finish()

    def _loop(self) -> None:
        lc = self._lc
        while not lc.stop.is_set():
            link = self._attempt()
            if link is None:
                if lc.stop.is_set() or not self._policy.allows(self.last_failure, lc.ever_opened):
                    return
                if not self._wait_backoff():
                    return
                continue
            with lc.lock:
                reconnected = lc.link_up(link)
                adopted = self._outbound.adopt_waiting(link) if reconnected is False else []
            if reconnected is None:  # close() came first
                link.close()
                return
            if self._keepalive is not None:
                self._keepalive.start(link)
            if reconnected:
                self._start_restore(link)
            else:
                self._policy.backoff.reset()
                self._post_event("open", OpenEvent(self._target, False))
                self._outbound.send_waiting(link, adopted, blocking=False)
            logger.info("connected to %s%s", self._endpoint.url, " (reconnected)" * reconnected)
            ending = self._reader.read(link)
            if not self._dropped(link, ending):
                return
            if not self._wait_backoff():
                return

    def _attempt_deadline(self) -> float | None:
        now = time.monotonic()
        deadline = None if self._attempt_timeout is None else now + self._attempt_timeout
        first = self.first_deadline
        if first is not None and not self._lc.ever_opened:
            deadline = first if deadline is None else min(deadline, first)
        return deadline

    def _attempt(self) -> Link | None:
        """One attempt (with the endpoint's immediate retries); None when it failed."""
        deadline = self._attempt_deadline()
        retries = 0
        while True:
            try:
                target = self._endpoint.next_target(deadline)
            except ConnectError as exc:
                if not self._lc.stop.is_set():  # (close() ended it: no error to report)
                    self._failed(exc)
                return None
            handshake = Handshake(
                target.url,
                deadline=time.monotonic() + 3600.0 if deadline is None else deadline,
                headers=target.headers,
                ssl_context=self._ssl_context,
            )
            if not self._lc.attempt(handshake):
                return None
            try:
                sock, leftover = handshake.run()
            except ConnectError as exc:
                if self._lc.stop.is_set():
                    return None
                if self._endpoint.retry_at_once(exc, retries):
                    retries += 1
                    logger.info("connect refused (%s); trying again at once", exc)
                    continue
                self._failed(exc)
                return None
            return Link(sock, leftover)

    def _failed(self, exc: ConnectError) -> None:
        self.last_failure = exc
        logger.info("connect failed: %s", exc)
        self._post_event("error", ErrorEvent(self._target, exc))

    def _wait_backoff(self) -> bool:
        """Waits before the next attempt; False when close() ended the wait."""
        return not self._lc.stop.wait(self._policy.backoff.next_delay())

    def _dropped(self, link: Link, ending: Any) -> bool:
        """The link ended: fail what was sent on it, fire ``close``; True to reconnect."""
        lc = self._lc
        will_retry = not lc.user_closed and self._policy.allows(None, True)
        lc.link_down(link, will_retry)
        link.close()
        if self._keepalive is not None:
            self._keepalive.stop()
        self._registry.unbind_all()
        code, reason, clean = ending.code, ending.reason, ending.clean
        reason = reason or link.abort_reason
        logger.info("connection closed: code %s %s", code, reason)
        what = "closed by close()" if lc.user_closed else "the connection dropped"
        failure = functools.partial(ConnectionClosedError, what, code, reason)
        for entry in self._outbound.pending.fail_link(link, failure):
            if entry.callback is not None and not entry.inline:
                self._dispatcher.post(self._dispatcher.run_entry, entry)
        if will_retry:
            self._post_close(code, reason, clean, True)
        else:  # the last close comes in _finish, after the on_end and callbacks it causes
            self._last_close = (code, reason, clean)
        return will_retry

    def _finish(self) -> None:
        """The end of the connection's life: CLOSED, nothing pending, the last events."""
        lc = self._lc
        lc.finish()
        if self._keepalive is not None:
            self._keepalive.stop()
        self._join_restorers(RESTORE_JOIN)  # (their last events come before ours)
        user = lc.user_closed
        failure = (
            functools.partial(ConnectionClosedError, "closed by close()", *lc.close_args)
            if user
            else functools.partial(ConnectionClosedError, "the connection is closed", 1006, "")
        )
        for entry in self._outbound.pending.close(failure):
            if entry.callback is not None and not entry.inline:
                self._dispatcher.post(self._dispatcher.run_entry, entry)
        self._streams.post_ended(self._registry.close(None if user else failure()))
        if not self._final_close_posted:
            code, reason = lc.close_args if user else (1006, "")
            clean = False
            if self._last_close is not None:
                code, reason, clean = self._last_close
            self._post_close(code, reason, clean, False)
        self.done.set()
        self._dispatcher.stop()  # ends the dispatch thread after what is queued

    # -- restore (its own thread) ----------------------------------------------------------------

    def _start_restore(self, link: Link) -> None:
        thread = threading.Thread(
            target=self._restore, args=(link,), name=f"deriv_sdk-restore-{self._name}", daemon=True
        )
        with self._restorers_lock:
            self._restorers = [t for t in self._restorers if t.is_alive()] + [thread]
        thread.start()

    def _restore(self, link: Link) -> None:
        """After a reconnect: the endpoint's steps, the re-subscribes, then OPEN and ``open``."""
        timeout = self._attempt_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            try:
                self._endpoint.restore(self._outbound, link, deadline)
            except APIError as exc:  # e.g. a revoked token: streams that need none still run
                self._post_event("error", ErrorEvent(self._target, exc))
            self._streams.restore(link, deadline)
        except (ConnectionClosedError, InvalidStateError):
            return  # dropped again (or closing): the io thread carries on
        except Exception as exc:  # no answer in time (or a bug): drop this link, try again
            if not isinstance(exc, RestoreIncomplete) and not isinstance(exc, TimeoutError):
                logger.exception("restoring the session failed")
            self._post_event("error", ErrorEvent(self._target, exc))
            link.abort(f"session not restored: {exc}")
            return
        # The re-subscribes' answers were routed by the reader: let it hand that read over
        # first, so that the streams' first messages come before "open".
        self._reader.wait_handed_over(self._reader.reads_begun, HANDOVER_WAIT)
        lc = self._lc
        with lc.lock:
            if not lc.restored(link):
                return
            adopted = self._outbound.adopt_waiting(link)
        # Only a restored session counts as a success: a server that accepts and then
        # drops at once must not reset the backoff into a reconnect storm.
        self._policy.backoff.reset()
        self._post_event("open", OpenEvent(self._target, True))
        self._outbound.send_waiting(link, adopted, blocking=True)

    # -- events -----------------------------------------------------------------------------------

    def _post_event(self, type: str, event: Any) -> None:
        self._dispatcher.post_event(type, event)

    def _post_close(self, code: int, reason: str, clean: bool, will_reconnect: bool) -> None:
        self._final_close_posted = not will_reconnect
        self._post_event("close", CloseEvent(self._target, code, reason, clean, will_reconnect))
