"""The server command: ``python -m deriv_sdk.testing`` and ``deriv-sdk serve`` are this one.

Both build their parser with :func:`add_arguments` and run :func:`run`, so they have the same
options with the same defaults::

    parser = argparse.ArgumentParser(prog="python -m deriv_sdk.testing")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))

:func:`run` starts a :class:`~deriv_sdk.testing.LocalServer`, prints its URLs (the v3 URL,
the new API's public socket URL and its REST base URL, one per line in that order, or one
JSON object with ``--json``) and serves in the foreground until Ctrl-C or SIGTERM. It never
prints a token or a PAT.

Importing this module needs only the standard library (the ``deriv-sdk`` CLI builds its
parser on every run, with or without the ``testing`` extra); :func:`run` imports the server.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deriv_sdk.testing.server import LocalServer

#: The token and the PAT the server accepts when none is given.
DEFAULT_TOKEN = "test-token"
DEFAULT_PAT = "test-pat"

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CANNOT_LISTEN = 3


def add_arguments(parser: argparse.ArgumentParser, *, output_options: bool = True) -> None:
    """Add the server's options to ``parser``.

    Args:
        parser: the parser (or subparser) of the command.
        output_options: also add ``--json`` and ``-v``/``--verbose``; pass False when the
            program (e.g. the ``deriv-sdk`` CLI) defines them itself, with the same
            destinations ``json`` (bool) and ``verbose`` (count).
    """
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="TCP port (default 8765; 0: any free port)"
    )
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="TOKEN",
        help=f"a valid v3 token (repeatable; default {DEFAULT_TOKEN})",
    )
    parser.add_argument(
        "--pat",
        action="append",
        dest="pats",
        metavar="PAT",
        help=f"a valid PAT of the new API (repeatable; default {DEFAULT_PAT})",
    )
    parser.add_argument(
        "--tick-interval",
        type=float,
        default=1.0,
        help="seconds between two ticks of every stream (default 1)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the random walk")
    parser.add_argument(
        "--otp-ttl",
        type=float,
        default=120.0,
        help="seconds a one-time WebSocket URL stays valid (default 120)",
    )
    if output_options:
        parser.add_argument("--json", action="store_true", help="print the URLs as one JSON object")
        parser.add_argument(
            "-v", "--verbose", action="count", default=0, help="log at INFO (-vv: DEBUG)"
        )


def _stdout_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def run(
    args: argparse.Namespace,
    *,
    echo: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Serve until Ctrl-C, SIGTERM or ``stop``; returns the exit status.

    Args:
        args: the parsed options of :func:`add_arguments`.
        echo: called with each output line (default: written to stdout and flushed); the
            ``deriv-sdk`` CLI can pass its own output function.
        stop: an event that ends the command when set (for embedding it, e.g. in a thread).

    Returns:
        0 after a clean stop, 2 for a bad option value (or no ``testing`` extra), 3 when the
        address cannot be bound. A problem is one line on stderr, never a traceback.

    SIGTERM stops the server like Ctrl-C. Its handler is only installed when ``run`` is
    called on the main thread (Python allows signal handlers nowhere else), and the previous
    handler is put back on return.
    """
    out = echo or _stdout_line
    if not args.tick_interval > 0:
        _error("--tick-interval must be > 0")
        return EXIT_USAGE
    if not args.otp_ttl > 0:
        _error("--otp-ttl must be > 0")
        return EXIT_USAGE
    if not 0 <= args.port <= 65535:
        _error("--port must be between 0 and 65535")
        return EXIT_USAGE
    verbose = int(getattr(args, "verbose", 0) or 0)
    if verbose:
        logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO)
    try:
        from deriv_sdk.testing.server import LocalServer
    except ImportError as exc:
        _error(f"the server needs the testing extra: pip install 'deriv-sync-sdk[testing]' ({exc})")
        return EXIT_USAGE
    done = stop if stop is not None else threading.Event()
    server = LocalServer(**_server_kwargs(args))
    previous: Any = None
    on_main = threading.current_thread() is threading.main_thread()

    def on_term(signum: int, frame: FrameType | None) -> None:
        done.set()

    if on_main:
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        try:
            server.start()
        except OSError as exc:
            _error(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
            return EXIT_CANNOT_LISTEN
        urls = server_urls(server)
        if getattr(args, "json", False):
            out(json.dumps(urls, separators=(",", ":")))
        else:
            for value in urls.values():
                out(value)
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if on_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


def server_urls(server: LocalServer) -> dict[str, str]:
    """What the command prints, in this order: ``url`` (v3), ``options_url`` (the new API's
    public socket) and ``rest_url`` (its REST base). Never a token or a PAT."""
    return {"url": server.url, "options_url": server.options_url, "rest_url": server.rest_url}


def _server_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "host": args.host,
        "port": args.port,
        "tokens": list(args.tokens or [DEFAULT_TOKEN]),
        "pats": list(args.pats or [DEFAULT_PAT]),
        "tick_interval": args.tick_interval,
        "seed": args.seed,
        "otp_ttl": args.otp_ttl,
    }
