"""The sockets and threads under :class:`~deriv_sdk.testing.LocalServer`.

:func:`websockets.sync.server.serve` opens the listening socket and builds websockets'
per-connection handler (handshake, then our handler); :class:`Listener` runs its own accept
loop on that socket instead of ``serve_forever()``, so that every thread is a daemon named
``deriv_sdk-server-...`` that :meth:`Listener.join_all` can join, whatever websockets version
(``serve_forever()`` starts anonymous non-daemon threads, and only recent versions join them).

Threads: ``deriv_sdk-server-accept`` (this accept loop), and per connection N
``deriv_sdk-server-conn-N`` (websockets' handshake, then the server's handler) and
``deriv_sdk-server-recv-N`` (websockets' reader, renamed here).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve

from deriv_sdk.testing.logs import QuietLogger

_CONN_PREFIX = "deriv_sdk-server-conn-"


class Listener:
    """Listening socket, accept loop, and bookkeeping of every connection and thread.

    Args:
        host: interface to listen on.
        port: TCP port (0: any free one).
        ssl_context: server-side TLS context, or None.
        handler: called with each connection after its handshake, on its conn thread.
        process_request: websockets' ``process_request`` hook (refuse handshakes, read the URL).
    """

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        handler: Callable[[ServerConnection], None],
        process_request: Callable[[ServerConnection, Request], Response | None],
    ) -> None:
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: list[ServerConnection] = []
        self._numbers = itertools.count(1)
        self._stopping = threading.Event()
        self._wake = socket.socketpair()  # wakes the accept loop's select() at stop
        owner = self

        class _Connection(ServerConnection):
            """Names websockets' reader thread ours, and lets stop() join it."""

            app_id_ok = True
            number = 0

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                name = threading.current_thread().name
                self.number = int(name[len(_CONN_PREFIX) :]) if name.startswith(_CONN_PREFIX) else 0
                self.recv_events_thread.name = f"deriv_sdk-server-recv-{self.number}"
                owner.track(self.recv_events_thread, self)

        options: dict[str, Any] = {}
        if "ping_interval" in inspect.signature(serve).parameters:  # websockets >= 15
            options["ping_interval"] = None  # Deriv pings in JSON; stall() must send nothing
        try:
            self.server: Server = serve(
                handler,
                host,
                port,
                ssl=ssl_context,
                process_request=process_request,
                compression=None,
                close_timeout=1.0,  # loopback: a client that has not answered by then will not
                create_connection=_Connection,
                logger=QuietLogger(),  # never logs frames or request lines
                **options,
            )
        except BaseException:
            self.close()
            raise
        self.port: int = self.server.socket.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="deriv_sdk-server-accept", daemon=True
        )
        self.track(self._accept_thread)
        self._accept_thread.start()

    def track(self, thread: threading.Thread, conn: ServerConnection | None = None) -> None:
        """Remember ``thread`` (and ``conn``) so that :meth:`join_all` joins it."""
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive() or not t.ident] + [thread]
            if conn is not None:
                self._conns = [c for c in self._conns if c.recv_events_thread.is_alive()]
                self._conns.append(conn)

    def alive(self) -> list[str]:
        """Names of the tracked threads still alive."""
        with self._lock:
            return [t.name for t in self._threads if t.is_alive()]

    def stop_accepting(self, timeout: float) -> None:
        """End the accept loop and close the listening socket; handshakes in progress get 503."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake[1].send(b"x")
        self._accept_thread.join(timeout)
        self.server.socket.close()
        closed = getattr(self.server, "socket_closed", None)
        if isinstance(closed, threading.Event):
            closed.set()  # websockets >= 14 answers handshakes in progress with 503

    def join_all(self, deadline: float) -> bool:
        """Join every tracked thread until ``deadline`` (monotonic); True if all ended."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread() and thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        return not self.alive()

    def abort(self, only_open: bool = False, handshaking: bool = False) -> None:
        """Shut down the TCP sockets of the connections: no close frame, no goodbye.

        Args:
            only_open: only connections whose handshake completed.
            handshaking: only connections still in the opening handshake.
        """
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            if only_open and conn.protocol.state is not State.OPEN:
                continue
            if handshaking and conn.protocol.state is not State.CONNECTING:
                continue
            with contextlib.suppress(OSError):  # already closed
                conn.socket.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Release the wake-up sockets (after the accept loop ended).

        Also websockets' own shutdown socketpair, which only ``serve_forever()`` and
        ``shutdown()`` (neither used here) would close.
        """
        ends = list(self._wake)
        server = getattr(self, "server", None)
        for name in ("shutdown_watcher", "shutdown_notifier"):
            end = getattr(server, name, None)
            if isinstance(end, socket.socket):
                ends.append(end)
        for end in ends:
            end.close()

    def _accept_loop(self) -> None:
        listener = self.server.socket
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = selector.select(timeout=1.0)
                if self._stopping.is_set():
                    return
                if not any(key.fileobj is listener for key, _ in ready):
                    continue
                try:
                    sock, addr = listener.accept()
                except (BlockingIOError, InterruptedError, ssl.SSLError):
                    continue
                except OSError:
                    return  # the listening socket was closed
                sock.setblocking(True)
                thread = threading.Thread(
                    target=self.server.handler,
                    args=(sock, addr),
                    name=f"{_CONN_PREFIX}{next(self._numbers)}",
                    daemon=True,
                )
                self.track(thread)
                thread.start()
