"""The sockets and threads under :class:`~deriv_sdk.testing.LocalServer`.

:func:`websockets.sync.server.serve` opens the listening socket and builds websockets'
per-connection handler (handshake, then our handler); :class:`Listener` runs its own accept
loop on that socket instead of ``serve_forever()``, so that every thread is a daemon named
``deriv_sdk-server-...`` that :meth:`Listener.join_all` can join, whatever websockets version
(``serve_forever()`` starts anonymous non-daemon threads, and only recent versions join them).

Each accepted connection first goes through the HTTP front door (:mod:`.front`), on its own
thread: the TLS handshake (done here, not by websockets, so that REST gets TLS too), then
the request head. A WebSocket upgrade is handed to websockets together with the bytes already
read (our connection class feeds them to websockets' protocol before it reads the socket);
any other request goes to the REST handler, with keep-alive, until the client closes, asks to
close, or goes idle.

Threads: ``deriv_sdk-server-accept`` (this accept loop), and per connection N
``deriv_sdk-server-conn-N`` (front door, REST calls, websockets' handshake, then the server's
handler) and ``deriv_sdk-server-recv-N`` (websockets' reader, renamed here).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve

from deriv_sdk.testing import front
from deriv_sdk.testing.front import HttpError, HttpRequest, HttpResponse
from deriv_sdk.testing.logs import QuietLogger

logger = logging.getLogger("deriv_sdk.testing")

_CONN_PREFIX = "deriv_sdk-server-conn-"

#: The bytes of an upgrade request already read by the front door, for the connection that
#: websockets creates next on the same thread.
_handoff = threading.local()


class RestFront(Protocol):
    """What the front door needs from the REST side."""

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request that is not a WebSocket upgrade."""

    def refusal(self, status: int, message: str, request: HttpRequest | None) -> HttpResponse:
        """The response for a request the front door cannot serve (too big, too slow, ...)."""


class Listener:
    """Listening socket, accept loop, front door, and bookkeeping of every connection/thread.

    Args:
        host: interface to listen on.
        port: TCP port (0: any free one).
        ssl_context: server-side TLS context, or None.
        handler: called with each WebSocket connection after its handshake, on its thread.
        process_request: websockets' ``process_request`` hook (refuse handshakes, read the URL).
        process_response: websockets' ``process_response`` hook (sees the final status).
        rest: answers every request that is not a WebSocket upgrade.
    """

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        handler: Callable[[ServerConnection], None],
        process_request: Callable[[ServerConnection, Request], Response | None],
        process_response: Callable[[ServerConnection, Request, Response], Response | None],
        rest: RestFront,
    ) -> None:
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: list[ServerConnection] = []
        self._front: set[socket.socket] = set()  # sockets in the front door (not websockets')
        self._numbers = itertools.count(1)
        self._stopping = threading.Event()
        self._wake = socket.socketpair()  # wakes the accept loop's select() at stop
        self._ssl = ssl_context
        self._rest = rest
        owner = self

        class _Connection(ServerConnection):
            """Names websockets' reader thread ours, lets stop() join it, and replays the
            request head that the front door read."""

            number = 0

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self._replay: bytes = getattr(_handoff, "data", b"")
                _handoff.data = b""
                super().__init__(*args, **kwargs)
                name = threading.current_thread().name
                self.number = int(name[len(_CONN_PREFIX) :]) if name.startswith(_CONN_PREFIX) else 0
                self.recv_events_thread.name = f"deriv_sdk-server-recv-{self.number}"
                owner.track(self.recv_events_thread, self)

            def recv_events(self) -> None:
                # Runs on the reader thread before it first reads the socket: feed the
                # protocol what the front door already read, as recv_events() does with
                # each chunk it reads.
                data, self._replay = self._replay, b""
                if data:
                    with self.protocol_mutex:
                        self.protocol.receive_data(data)
                        events = self.protocol.events_received()
                        try:
                            self.send_data()
                        except Exception as exc:  # the socket is gone: the loop sees it
                            self.set_connection_exc(exc)
                    for event in events:
                        self.process_event(event)
                super().recv_events()

        options: dict[str, Any] = {}
        if "ping_interval" in inspect.signature(serve).parameters:  # websockets >= 15
            options["ping_interval"] = None  # Deriv pings in JSON; stall() must send nothing
        try:
            self.server: Server = serve(
                handler,
                host,
                port,
                ssl=None,  # the front door does TLS, for REST and WebSockets alike
                process_request=process_request,
                process_response=process_response,
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

    def abort(self, ws_states: frozenset[State] | None = None, front_door: bool = True) -> None:
        """Shut down TCP sockets: no close frame, no HTTP response, no goodbye.

        Args:
            ws_states: the WebSocket connections to shut, by state (None: all of them).
            front_door: also the connections still in the front door (reading a request
                head, in a REST call, or idle between keep-alive requests).
        """
        with self._lock:
            conns = list(self._conns)
            socks = list(self._front) if front_door else []
        for conn in conns:
            if ws_states is not None and conn.protocol.state not in ws_states:
                continue
            with contextlib.suppress(OSError):  # already closed
                conn.socket.shutdown(socket.SHUT_RDWR)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

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
                    target=self._serve_socket,
                    args=(sock, addr),
                    name=f"{_CONN_PREFIX}{next(self._numbers)}",
                    daemon=True,
                )
                self.track(thread)
                thread.start()

    # -- the front door (each connection's own thread) ------------------------------------

    def _serve_socket(self, sock: socket.socket, addr: Any) -> None:
        """Serve one accepted TCP connection: TLS, then HTTP requests, maybe a WebSocket."""
        self._enter_front(sock)
        owned = True  # False once websockets owns the socket
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            deadline = time.monotonic() + front.HEAD_TIMEOUT
            if self._ssl is not None:
                tls = self._ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                self._enter_front(tls, instead_of=sock)
                sock = tls
                tls.settimeout(front.HEAD_TIMEOUT)
                tls.do_handshake()
            buffer = bytearray()
            idle = False
            while not self._stopping.is_set():
                request: HttpRequest | None = None
                try:
                    request = front.parse_head(front.read_head(sock, buffer, deadline, idle))
                    if request.is_upgrade:
                        owned = False
                        self._hand_off(sock, addr, request.raw + bytes(buffer))
                        return
                    front.read_body(sock, request, buffer)
                except front.Closed:
                    return
                except HttpError as exc:
                    refusal = self._rest.refusal(exc.status, exc.message, request)
                    front.write_response(sock, refusal, keep_alive=False)
                    return
                response = self._rest.handle(request)
                keep = request.keep_alive and not self._stopping.is_set()
                front.write_response(sock, response, keep, head_only=request.method == "HEAD")
                if not keep:
                    return
                idle = True
                deadline = time.monotonic() + front.KEEPALIVE_TIMEOUT
        except OSError:  # reset, TLS failure, a client that reads nothing: drop it
            return
        except Exception:  # a bug: log it, never let it pass silently
            logger.exception("LocalServer: front door failed")
        finally:
            self._leave_front(sock)
            if owned:
                with contextlib.suppress(OSError):
                    sock.close()

    def _hand_off(self, sock: socket.socket, addr: Any, data: bytes) -> None:
        """Give an upgrade request to websockets, with the bytes the front door read."""
        self._leave_front(sock)
        sock.settimeout(None)
        _handoff.data = data  # picked up by _Connection.__init__ on this thread
        try:
            self.server.handler(sock, addr)
        finally:
            _handoff.data = b""

    def _enter_front(self, sock: socket.socket, instead_of: socket.socket | None = None) -> None:
        with self._lock:
            if instead_of is not None:
                self._front.discard(instead_of)
            self._front.add(sock)

    def _leave_front(self, sock: socket.socket) -> None:
        with self._lock:
            self._front.discard(sock)
