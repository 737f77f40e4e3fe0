"""``deriv-sdk`` (also ``python -m deriv_sdk``): poke at Deriv's APIs from a shell.

Subcommands: ``ping``, ``time``, ``ticks SYMBOL``, ``call JSON``, ``accounts`` (new API),
``serve`` (:mod:`deriv_sdk.testing.command`). The options are accepted before or after the
subcommand. The token comes from ``DERIV_TOKEN``, never from the command line (the shell's
history): a v3 token with ``--api legacy`` (authorized first), a PAT with ``--api options``.

Exit codes: 0 ok, 1 refused by Deriv (an API or REST error, also one that ended the link), 2
usage error, 3 connection error (could not connect, closed, no answer in time): one line on
stderr, never a traceback. ``-v`` logs only ``deriv_sdk.*``, secrets shown as ``<redacted>``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import __version__
from .connection import Connection
from .errors import APIError, ConnectError, ConnectionClosedError, DerivError, RestError
from .events import CloseEvent, ErrorEvent, OpenEvent
from .rest import RestClient
from .testing import command as server_command

if TYPE_CHECKING:
    from .testing.server import LocalServer

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_API_ERROR, EXIT_USAGE, EXIT_CONNECTION, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

DEFAULT_TIMEOUT = 10.0
OPTIONS_HOST = "api.derivws.com"
LOCAL_TOKEN = server_command.DEFAULT_TOKEN
LOCAL_PAT = server_command.DEFAULT_PAT
LOCAL_APP_ID = "deriv-sdk-local"  # a local server takes any non-empty Deriv-App-ID
PROG = "deriv-sdk"
# The options of the client commands (``serve`` refuses them: it has the server's own).
CLIENT_OPTIONS = ("api", "account", "app_id", "endpoint", "url", "rest_url", "local", "timeout")


class UsageError(Exception):
    """A usage problem found after parsing (bad JSON for ``call``, conflicting options)."""


# --------------------------------------------------------------------------- parser


def _output_options() -> argparse.ArgumentParser:
    """``--json`` and ``-v`` (a count), also ``serve``'s (what the server command reads).

    Every default is ``SUPPRESS``, so that a value given before the subcommand is not
    overwritten by the subparser's default; ``_opt`` supplies the real defaults.
    """
    output = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = output.add_argument_group("output options (before or after the subcommand)")
    group.add_argument("--json", action="store_true", help="one JSON object per output line")
    group.add_argument(
        "-v", "--verbose", action="count", help="log the SDK's activity to stderr (serve: -vv)"
    )
    return output


def _common_options() -> argparse.ArgumentParser:
    """The options of every client subcommand, accepted before or after it."""
    common = argparse.ArgumentParser(
        add_help=False, argument_default=argparse.SUPPRESS, parents=[_output_options()]
    )
    group = common.add_argument_group("connection options (before or after the subcommand)")
    group.add_argument("--api", choices=("legacy", "options"), help="v3 (default) or new API")
    group.add_argument("--account", metavar="ID", help="new API: that account's socket")
    group.add_argument("--app-id", help="Deriv app id (default $DERIV_APP_ID; v3: else 1089)")
    group.add_argument("--endpoint", help=f"host (ws.derivws.com; new API: {OPTIONS_HOST})")
    group.add_argument("--url", help="the whole ws:// or wss:// URL (new API: the public socket)")
    group.add_argument("--rest-url", help="new API: the REST base URL (https://ENDPOINT)")
    group.add_argument("--local", action="store_true", help="use a LocalServer in-process")
    group.add_argument("--timeout", type=float, help="seconds to connect, and per request (10)")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``deriv-sdk``."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Talk to Deriv's WebSocket APIs (v3, and the new API) from the command line.",
        epilog="The token comes from the DERIV_TOKEN environment variable (a PAT with --api "
        "options). Exit codes: 0 ok, 1 refused by Deriv, 2 usage error, 3 connection error.",
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
    sub.add_parser("accounts", parents=[common], help="new API: list the PAT's accounts")
    serve = sub.add_parser("serve", parents=[_output_options()], help="run a LocalServer")
    server_command.add_arguments(serve, output_options=False)
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
    with _logging(args):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        _fail(f"{PROG}: error: {exc}")
        return EXIT_USAGE
    except APIError as exc:
        _fail(f"error: {exc.code}: {exc.message}")
        return EXIT_API_ERROR
    except DerivError as exc:  # RestError, ConnectError, ConnectionClosedError, timeouts
        if _rest_cause(exc) is not None:  # Deriv refused a REST call (maybe to connect)
            _fail(f"error: {exc}")
            return EXIT_API_ERROR
        _fail(f"error: {type(exc).__name__}: {exc}")
        return EXIT_CONNECTION
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _rest_cause(exc: BaseException | None) -> RestError | None:
    """The ``RestError`` that ``exc`` was raised from (the new API's connect raises a
    ``ConnectError`` from the refused one-time-URL call), if any."""
    for _ in range(10):
        if exc is None or isinstance(exc, RestError):
            return exc
        exc = exc.__cause__
    return None


def _fail(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _out(line: str) -> None:
    print(line, flush=True)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- logging

_OTP = re.compile(r"(otp=)(?!<redacted>)[^&\s'\"]+")


class _SafeFormatter(logging.Formatter):
    """Formats a record, then replaces the secrets the command knows (the token or PAT of
    ``DERIV_TOKEN``) and any ``otp=`` value with ``<redacted>``: the library never logs
    them, and this makes sure the command's own log setup cannot bring one back."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__("%(threadName)s %(name)s: %(message)s")
        self.secrets = [s for s in secrets if len(s) >= 4]  # (not every "a" of the log)

    def format(self, record: logging.LogRecord) -> str:
        text = _OTP.sub(r"\1<redacted>", super().format(record))
        for secret in self.secrets:
            text = text.replace(secret, "<redacted>")
        return text


def _only_the_sdk(record: logging.LogRecord) -> bool:
    # Other libraries (websockets' own loggers, websocket-client) may log frames or URLs.
    return record.name == "deriv_sdk" or record.name.startswith("deriv_sdk.")


@contextlib.contextmanager
def _logging(args: argparse.Namespace) -> Iterator[None]:
    """With ``-v``, for this run: the SDK's records on stderr at DEBUG (``serve``: ``-v``
    INFO, ``-vv`` DEBUG, as ``python -m deriv_sdk.testing``). The handler is the root
    logger's, so the server command's ``basicConfig`` adds none; only ``deriv_sdk.*`` pass."""
    verbose = int(_opt(args, "verbose", 0) or 0)
    if not verbose:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SafeFormatter([os.environ.get("DERIV_TOKEN", "")]))
    handler.addFilter(_only_the_sdk)
    root, sdk = logging.getLogger(), logging.getLogger("deriv_sdk")
    previous = sdk.level
    root.addHandler(handler)
    sdk.setLevel(logging.INFO if args.command == "serve" and verbose == 1 else logging.DEBUG)
    try:
        yield
    finally:
        sdk.setLevel(previous)
        root.removeHandler(handler)


# --------------------------------------------------------------------------- connection


def _checked(args: argparse.Namespace) -> tuple[str, bool, float]:
    """``(api, local, timeout)`` after the checks that every client command shares."""
    api = str(_opt(args, "api", "legacy"))
    local = bool(_opt(args, "local", False))
    given = [name for name in ("url", "endpoint", "rest_url") if _opt(args, name) is not None]
    if local and given:
        raise UsageError(f"--{given[0].replace('_', '-')} and --local cannot be used together")
    if api != "options" and _opt(args, "account") is not None:
        raise UsageError("--account is an account of the new API: add --api options")
    rest = api == "options" and (args.command == "accounts" or _opt(args, "account") is not None)
    if "rest_url" in given and (not rest or "endpoint" in given):
        raise UsageError("--rest-url: for accounts or --account (--api options), not --endpoint")
    timeout = float(_opt(args, "timeout", DEFAULT_TIMEOUT))
    if not timeout > 0:
        raise UsageError("--timeout must be > 0")
    return api, local, timeout


def _rest_client(
    args: argparse.Namespace, server: LocalServer | None, timeout: float
) -> RestClient:
    """The REST client of the new API: the PAT of ``DERIV_TOKEN``, the app id of
    ``--app-id``/``DERIV_APP_ID`` (with ``--local``: ``test-pat`` and any app id)."""
    if _opt(args, "url") is not None:
        raise UsageError("--url is the public socket's; for REST use --rest-url or --endpoint")
    pat = os.environ.get("DERIV_TOKEN") or (LOCAL_PAT if server else None)
    if not pat:
        raise UsageError("set DERIV_TOKEN to a Personal Access Token (PAT) of the new API")
    app_id = (
        _opt(args, "app_id") or os.environ.get("DERIV_APP_ID") or (LOCAL_APP_ID if server else None)
    )
    if not app_id:
        raise UsageError("the new API needs your app id: --app-id ID or DERIV_APP_ID")
    host = _opt(args, "endpoint") or OPTIONS_HOST
    base_url = server.rest_url if server else _opt(args, "rest_url") or f"https://{host}"
    try:
        return RestClient(app_id, pat, base_url=base_url, timeout=timeout)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@contextlib.contextmanager
def _server(args: argparse.Namespace, local: bool) -> Iterator[LocalServer | None]:
    """With ``--local``, a LocalServer that accepts ``DERIV_TOKEN`` (as the v3 token or as
    the PAT, by ``--api``), else ``test-token`` and ``test-pat``."""
    if not local:
        yield None
        return
    try:
        from .testing.server import LocalServer
    except ImportError as exc:
        raise UsageError(
            f"--local needs the testing extra: pip install 'deriv-sync-sdk[testing]' ({exc})"
        ) from None
    token = os.environ.get("DERIV_TOKEN") or None
    options = _opt(args, "api") == "options"
    tokens = [LOCAL_TOKEN if options or not token else token]
    pats = [token if options and token else LOCAL_PAT]
    with LocalServer(tokens=tokens, pats=pats, tick_interval=1.0) as server:
        yield server


@contextlib.contextmanager
def _connection(args: argparse.Namespace, *, stream: bool) -> Iterator[Connection]:
    """A connected (v3 with ``DERIV_TOKEN``: authorized) Connection, closed at the end.
    One-shot commands use no keepalive and no reconnect: a drop fails the command (exit 3).
    Streams keep the link alive with pings every 30 s and reconnect (re-subscribing)."""
    api, local, timeout = _checked(args)
    settings: dict[str, Any] = {"request_timeout": timeout, "reconnect": stream}
    settings.update(keepalive_interval=30.0 if stream else None, keepalive_timeout=10.0)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(_server(args, local))
        try:
            conn = _new_connection(args, api, server, settings)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        stack.callback(conn.close)
        conn.connect(timeout=timeout)
        if api == "legacy" and os.environ.get("DERIV_TOKEN"):
            conn.authorize(os.environ["DERIV_TOKEN"])
        yield conn


def _new_connection(
    args: argparse.Namespace, api: str, server: LocalServer | None, settings: dict[str, Any]
) -> Connection:
    url = _opt(args, "url")
    if api == "legacy":
        url = server.url if server else url
        names = [name for name in ("app_id", "endpoint") if _opt(args, name) is not None]
        settings.update({name: _opt(args, name) for name in names})
        return Connection(url=url, **settings) if url else Connection(**settings)
    if _opt(args, "account") is not None:
        rest = _rest_client(args, server, settings["request_timeout"])
        return Connection.options(_opt(args, "account"), rest=rest, **settings)
    url = server.options_url if server else url
    if url is not None:
        return Connection.options(url=url, **settings)
    return Connection.options(endpoint=_opt(args, "endpoint") or OPTIONS_HOST, **settings)


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


def _cmd_accounts(args: argparse.Namespace) -> int:
    api, local, timeout = _checked(args)
    if api != "options":
        raise UsageError("accounts is a call of the new API: add --api options")
    if _opt(args, "account") is not None:
        raise UsageError("accounts lists every account: drop --account")
    with _server(args, local) as server:
        accounts = _rest_client(args, server, timeout).accounts()
    for account in accounts:
        if _opt(args, "json", False):
            _out(_dumps(account))
        else:
            fields = ("account_id", "account_type", "balance", "currency", "status", "group")
            _out(" ".join(str(account.get(name, "-")) for name in fields))
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
        self.refused: ConnectError | None = None  # a reconnect that Deriv's REST refused


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
            state.error = state.refused or ConnectionClosedError(
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
        elif isinstance(event.error, ConnectError):
            if _rest_cause(event.error) is not None:
                state.refused = event.error
        else:
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
    for name in CLIENT_OPTIONS:
        if _opt(args, name) is not None:
            raise UsageError(f"serve takes the server's options, not --{name.replace('_', '-')}")
    return server_command.run(args, echo=_out)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "ping": _cmd_ping,
    "time": _cmd_time,
    "ticks": _cmd_ticks,
    "call": _cmd_call,
    "accounts": _cmd_accounts,
    "serve": _cmd_serve,
}
