"""Ticks from Deriv's new API: its public socket needs no account, no token, no app id.

python examples/options_ticker.py --local --count 5     # or --url URL; default symbol R_100
"""

from __future__ import annotations

import argparse
import threading

from deriv_sdk import Connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a few ticks from the new API.")
    parser.add_argument("symbol", nargs="?", default="R_100")
    parser.add_argument("--count", type=int, default=5, help="ticks to print (default 5)")
    parser.add_argument("--url", help="the public socket's URL (default: Deriv's)")
    parser.add_argument("--local", action="store_true", help="start a LocalServer in-process")
    args = parser.parse_args(argv)
    server = None
    if args.local:
        from deriv_sdk.testing import LocalServer

        server = LocalServer(tick_interval=0.2).start()
    try:
        # wss://api.derivws.com/trading/v1/options/ws/public unless a URL is given
        with Connection.options(url=server.options_url if server else args.url) as conn:
            print("server time:", conn.request({"time": 1})["time"])
            enough = threading.Event()
            seen = []

            def on_tick(message):  # on the dispatch thread: the first reply, then each tick
                if enough.is_set():
                    return  # a tick already on its way while we forget
                tick = message["tick"]
                seen.append(tick["quote"])
                print(tick["epoch"], tick["symbol"], tick["quote"])
                if len(seen) >= args.count:
                    enough.set()

            sub = conn.subscribe({"ticks": args.symbol}, on_tick)
            if not enough.wait(args.count * 5 + 10):
                print("timed out waiting for ticks")
                return 1
            sub.forget()
            print("forgotten, active =", sub.active)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
