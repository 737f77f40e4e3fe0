"""One-minute candles, then the candle being built (``ohlc``, prices as strings), typed.

python examples/typed/candles.py --local --count 3    # or --url URL; default symbol R_100
"""

from __future__ import annotations

import argparse
import threading
from typing import TYPE_CHECKING

from deriv_sdk import Connection
from deriv_sdk.api import LegacyAPI

if TYPE_CHECKING:  # types for mypy and the editor only: importing them at run time costs 0.1 s
    from deriv_sdk.api.v3_types import TicksHistoryResponse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print candles and their live updates.")
    parser.add_argument("symbol", nargs="?", default="R_100")
    parser.add_argument("--count", type=int, default=3, help="updates to print (default 3)")
    parser.add_argument("--url", help="a ws:// or wss:// URL (default: Deriv, app_id 1089)")
    parser.add_argument("--local", action="store_true", help="start a LocalServer in-process")
    args = parser.parse_args(argv)
    server = None
    if args.local:
        from deriv_sdk.testing import LocalServer

        server = LocalServer(tick_interval=0.2).start()
    try:
        with Connection(url=server.url if server else args.url) as conn:
            updates: list[str] = []
            enough = threading.Event()

            def on_message(message: TicksHistoryResponse) -> None:  # dispatch thread
                for candle in message.get("candles", []):
                    print("candle", candle["epoch"], candle["open"], candle["close"])
                ohlc = message.get("ohlc")
                if ohlc is not None and not enough.is_set():
                    updates.append(ohlc["close"])
                    print("update", ohlc["open_time"], ohlc["open"], ohlc["close"])
                    if len(updates) >= args.count:
                        enough.set()

            sub = LegacyAPI(conn).ticks_history(
                args.symbol, end="latest", count=3, style="candles", granularity=60,
                listener=on_message,
            )  # fmt: skip
            if not enough.wait(args.count * 5 + 10):  # only the listener prints meanwhile
                return 1
            sub.forget()
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
