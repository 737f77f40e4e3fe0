"""``deriv-sdk`` (also ``python -m deriv_sdk``): poke at the Deriv v3 API from a shell.

Subcommands: ``ping``, ``time``, ``ticks SYMBOL``, ``call JSON``, ``serve``. The common
options (``--app-id``, ``--endpoint``, ``--url``, ``--local``, ``--timeout``, ``--json``,
``-v``) are accepted before or after the subcommand. The token comes from the ``DERIV_TOKEN``
environment variable (never from the command line, which lands in the shell's history); when
it is set, the connection authorizes before anything else.

Exit codes: 0 ok, 1 API error, 2 usage error, 3 connection error (could not connect, the
connection closed, or no answer in time). An expected failure prints one line to stderr,
never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from types import FrameType
from typing import TYPE_CHECKING, Any

from . import __version__
from .connection import Connection
from .errors import APIError, ConnectError, ConnectionClosedError, DerivError, RequestTimeoutError
from .events import CloseEvent, ErrorEvent, OpenEvent

if TYPE_CHECKING:
    from .testing.server import LocalServer

__all__ = ["main"]

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_INTERRUPTED = 130

DEFAULT_TIMEOUT = 10.0
LOCAL_TOKEN = "test-token"
PROG = "deriv-sdk"


class UsageError(Exception):
    """A usage problem found after parsing (bad JSON for ``call``, conflicting options)."""


# --------------------------------------------------------------------------- parser


def _common_options() -> argparse.ArgumentParser:
    """The options of every subcommand, accepted before or after it.

    Every default is ``SUPPRESS``, so a value given before the subcommand is not overwritten
    by the subparser's default; ``_opt`` supplies the real defaults.
    """
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = common.add_argument_group("connection options (before or after the subcommand)")
    group.add_argument("--app-id", help="Deriv app_id (default: $DERIV_APP_ID, else 1089)")
    group.add_argument("--endpoint", help="server host name (default ws.derivws.com)")
    group.add_argument("--url", help="the whole ws:// or wss:// URL (overrides --endpoint)")
    group.add_argument(
        "--local",
        action="store_true",
        help="start a LocalServer in-process and talk to it (needs the testing extra)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        help=f"seconds for connecting and for each request (default {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument("--json", action="store_true", help="one JSON object per output line")
    group.add_argument(
        "-v", "--verbose", action="store_true", help="log the SDK's activity to stderr"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``deriv-sdk``."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Talk to the Deriv WebSocket API v3 from the command line.",
        epilog="The token comes from the DERIV_TOKEN environment variable. "
        "Exit codes: 0 ok, 1 API error, 2 usage error, 3 connection error.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("ping", parents=[common], help="print the round-trip time of a ping")
    sub.add_parser("time", parents=[common], help="print the server's time")
    ticks = sub.add_parser("ticks", parents=[common], help="stream the ticks of a symbol")
    ticks.add_argument("symbol", help="e.g. R_100")
    ticks.add_argument("--count", type=_positive_int, help="stop after N ticks")
    call = sub.add_parser("call", parents=[common], help="send any call; JSON lines out")
    call.add_argument("payload", metavar="JSON", help="the request, e.g. '{\"time\": 1}'")
    call.add_argument("--subscribe", action="store_true", help="subscribe and print every message")
    call.add_argument(
        "--count", type=_positive_int, help="stop a stream after N messages (first reply counts)"
    )
    serve = sub.add_parser("serve", parents=[common], help="run a LocalServer in the foreground")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0: any)")
    serve.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="TOKEN",
        help="a valid token (repeatable; default: $DERIV_TOKEN, else test-token)",
    )
    serve.add_argument(
        "--tick-interval", type=float, default=1.0, help="seconds between ticks (default 1)"
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _opt(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Runs ``deriv-sdk`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if _opt(args, "verbose", False):
        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="%(threadName)s %(name)s: %(message)s"
        )
    try:
        command = _COMMANDS[args.command]
        return command(args)
    except UsageError as exc:
        _fail(f"{PROG}: error: {exc}")
        return EXIT_USAGE
    except APIError as exc:
        _fail(f"error: {exc.code}: {exc.message}")
        return EXIT_API_ERROR
    except (ConnectError, ConnectionClosedError, RequestTimeoutError) as exc:
        _fail(f"error: {type(exc).__name__}: {exc}")
        return EXIT_CONNECTION
    except DerivError as exc:
        _fail(f"error: {type(exc).__name__}: {exc}")
        return EXIT_CONNECTION
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _fail(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _out(line: str) -> None:
    print(line, flush=True)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- connection


@contextlib.contextmanager
def _local_server(args: argparse.Namespace, **kwargs: Any) -> Iterator[LocalServer]:
    try:
        from .testing.server import LocalServer
    except ImportError as exc:
        raise UsageError(
            f"a local server needs the testing extra: pip install 'deriv-sync-sdk[testing]' ({exc})"
        ) from None
    server = LocalServer(**kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def _connection(args: argparse.Namespace, *, stream: bool) -> Iterator[Connection]:
    """A connected (and, with ``DERIV_TOKEN``, authorized) Connection, closed at the end.

    One-shot commands use no keepalive and no reconnect: a drop fails the command (exit 3).
    Streams keep the link alive with pings every 30 s and reconnect (re-subscribing).
    """
    url = _opt(args, "url")
    local = _opt(args, "local", False)
    if url is not None and local:
        raise UsageError("--url and --local cannot be used together")
    token = os.environ.get("DERIV_TOKEN") or None
    timeout = float(_opt(args, "timeout", DEFAULT_TIMEOUT))
    if timeout <= 0:
        raise UsageError("--timeout must be > 0")
    with contextlib.ExitStack() as stack:
        if local:
            server = stack.enter_context(
                _local_server(args, tokens=[token or LOCAL_TOKEN], tick_interval=1.0)
            )
            url = server.url
        options: dict[str, Any] = {
            "request_timeout": timeout,
            "keepalive_interval": 30.0 if stream else None,
            "keepalive_timeout": 10.0,
            "reconnect": stream,
        }
        for name in ("app_id", "endpoint"):
            if _opt(args, name) is not None:
                options[name] = _opt(args, name)
        try:
            conn = Connection(url=url, **options) if url else Connection(**options)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        stack.callback(conn.close)
        conn.connect(timeout=timeout)
        if token:
            conn.authorize(token)
        yield conn


# --------------------------------------------------------------------------- commands


def _cmd_ping(args: argparse.Namespace) -> int:
    with _connection(args, stream=False) as conn:
        start = time.monotonic()
        response = conn.request({"ping": 1})
        rtt_ms = (time.monotonic() - start) * 1000.0
    if _opt(args, "json", False):
        _out(_dumps({"ping": response.get("ping"), "rtt_ms": round(rtt_ms, 3)}))
    else:
        _out(f"{response.get('ping')}: {rtt_ms:.1f} ms")
    return EXIT_OK


def _cmd_time(args: argparse.Namespace) -> int:
    with _connection(args, stream=False) as conn:
        epoch = int(conn.request({"time": 1})["time"])
    iso = datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if _opt(args, "json", False):
        _out(_dumps({"time": epoch, "utc": iso}))
    else:
        _out(f"{iso} (epoch {epoch})")
    return EXIT_OK


def _cmd_ticks(args: argparse.Namespace) -> int:
    as_json = bool(_opt(args, "json", False))

    def show(message: dict[str, Any]) -> None:
        tick = message.get("tick") or {}
        if as_json:
            _out(_dumps(tick))
            return
        quote = tick.get("quote")
        pip_size = tick.get("pip_size")
        if isinstance(quote, (int, float)) and isinstance(pip_size, int):
            quote = f"{quote:.{pip_size}f}"
        _out(f"{tick.get('epoch')} {tick.get('symbol')} {quote}")

    return _stream(args, {"ticks": args.symbol}, show, _opt(args, "count"))


def _cmd_call(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        raise UsageError(f"call: the argument is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not payload:
        raise UsageError("call: the argument must be a JSON object, e.g. '{\"time\": 1}'")
    if args.subscribe or payload.get("subscribe"):
        payload.pop("subscribe", None)
        return _stream(args, payload, lambda m: _out(_dumps(m)), _opt(args, "count"))
    with _connection(args, stream=False) as conn:
        response = conn.request(payload)
    _out(_dumps(response))
    return EXIT_OK


class _StreamState:
    """What the listeners (dispatch thread) tell the main thread about a stream."""

    def __init__(self, count: int | None) -> None:
        self.remaining = count
        self.done = threading.Event()
        self.error: BaseException | None = None


def _stream(
    args: argparse.Namespace,
    payload: dict[str, Any],
    show: Callable[[dict[str, Any]], None],
    count: int | None,
) -> int:
    """Subscribes to ``payload`` and shows each message until ``count``, the stream's end,
    Ctrl-C (exit 0) or a failure."""
    state = _StreamState(count)

    def on_message(message: dict[str, Any]) -> None:  # dispatch thread
        if state.done.is_set():
            return
        show(message)
        if state.remaining is not None:
            state.remaining -= 1
            if state.remaining <= 0:
                state.done.set()
        if "subscription" not in message:  # the server ended the stream (e.g. sold contract)
            state.done.set()

    def on_close(event: CloseEvent) -> None:  # dispatch thread
        if event.will_reconnect:
            _fail(f"connection lost (code {event.code}); reconnecting")
        elif not state.done.is_set():
            state.error = ConnectionClosedError(
                f"the connection closed (code {event.code})", event.code, event.reason
            )
            state.done.set()

    def on_open(event: OpenEvent) -> None:  # dispatch thread
        if event.reconnected:
            _fail("reconnected")

    def on_error(event: ErrorEvent) -> None:  # dispatch thread
        if isinstance(event.error, APIError) and not state.done.is_set():
            state.error = event.error
            state.done.set()
        elif not isinstance(event.error, ConnectError):
            _fail(f"warning: {event.message}")

    try:
        with _connection(args, stream=True) as conn:
            conn.on("close", on_close)
            conn.on("open", on_open)
            conn.on("error", on_error)
            sub = conn.subscribe(payload, on_message)
            while not state.done.wait(0.5):
                pass
            sub.forget()
    except KeyboardInterrupt:  # Ctrl-C ends a stream: that is the normal way out
        return EXIT_OK
    if state.error is not None:
        raise state.error
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    tokens = args.tokens or [os.environ.get("DERIV_TOKEN") or LOCAL_TOKEN]
    if args.tick_interval <= 0:
        raise UsageError("--tick-interval must be > 0")
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with _local_server(
            args, host=args.host, port=args.port, tokens=tokens, tick_interval=args.tick_interval
        ) as server:
            if _opt(args, "json", False):
                _out(_dumps({"url": server.url, "tokens": tokens}))
            else:
                _out(server.url)
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(0.5):
                    pass
    except OSError as exc:
        _fail(f"error: cannot listen on {args.host}:{args.port}: {exc}")
        return EXIT_CONNECTION
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "ping": _cmd_ping,
    "time": _cmd_time,
    "ticks": _cmd_ticks,
    "call": _cmd_call,
    "serve": _cmd_serve,
}
