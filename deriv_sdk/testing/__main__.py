"""``python -m deriv_sdk.testing``: run a :class:`LocalServer` in the foreground.

Prints the URL on one line, then serves until Ctrl-C (or SIGTERM), which stops it cleanly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from deriv_sdk.testing.server import LocalServer


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, serve until interrupted; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m deriv_sdk.testing", description="Run a local Deriv v3 server."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0: any)")
    parser.add_argument("--token", action="append", default=[], help="a valid token (repeatable)")
    parser.add_argument(
        "--tick-interval", type=float, default=1.0, help="seconds between ticks (default 1)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the random walk")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    server = LocalServer(
        host=args.host,
        port=args.port,
        tokens=args.token or None,
        tick_interval=args.tick_interval,
        seed=args.seed,
    )
    done = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_term)
    with server:
        print(server.url, flush=True)
        try:
            while not done.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
