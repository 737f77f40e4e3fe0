"""Blocking calls: each ``request()`` returns the answer's dict or raises ``APIError``.

python examples/request.py --local     # or --url URL; neither: Deriv's public server
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from deriv_sdk import APIError, Connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A few blocking calls.")
    parser.add_argument("--url", help="a ws:// or wss:// URL (default: Deriv, app_id 1089)")
    parser.add_argument("--local", action="store_true", help="start a LocalServer in-process")
    args = parser.parse_args(argv)
    server = None
    if args.local:
        from deriv_sdk.testing import LocalServer

        server = LocalServer().start()
    try:
        with Connection(url=server.url if server else args.url, request_timeout=10) as conn:
            epoch = conn.request({"time": 1})["time"]
            print("server time:", datetime.fromtimestamp(epoch, timezone.utc), f"({epoch})")
            status = conn.request({"website_status": 1})["website_status"]
            print("site status:", status["site_status"])
            symbols = conn.request({"active_symbols": "brief"})["active_symbols"]
            names = ", ".join(s["symbol"] for s in symbols[:5])
            print(f"{len(symbols)} active symbols, e.g. {names}")
            try:
                conn.request({"ticks": "NO_SUCH_SYMBOL"})
            except APIError as exc:  # the server's error, as an exception
                print("API error:", exc.code, "-", exc.message)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
