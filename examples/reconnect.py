"""What you see when the link drops: close(will_reconnect=True), then open(reconnected=True).

With --local, the server drops every connection (no close frame) after 3 ticks; the SDK
reconnects after a short backoff, re-subscribes the same Subscription (new id) and the
ticks resume. With --url, pull your network cable while it runs.

    python examples/reconnect.py --local --count 6
"""

from __future__ import annotations

import argparse
import threading

from deriv_sdk import Connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Watch a reconnect.")
    parser.add_argument("--count", type=int, default=6, help="ticks to print (default 6)")
    parser.add_argument("--url", help="a ws:// or wss:// URL (default: Deriv, app_id 1089)")
    parser.add_argument("--local", action="store_true", help="start a LocalServer in-process")
    args = parser.parse_args(argv)
    server = None
    if args.local:
        from deriv_sdk.testing import LocalServer

        server = LocalServer(tick_interval=0.1).start()
    ticks: list[float] = []
    done = threading.Event()

    def on_tick(message):  # dispatch thread
        ticks.append(message["tick"]["quote"])
        print(f"tick {len(ticks)}: {ticks[-1]}  (subscription {message['subscription']['id']})")
        if len(ticks) == args.count // 2 and server is not None:
            print("-- the server drops the connection --")
            server.drop()  # callable from any thread
        if len(ticks) == args.count:
            done.set()

    conn = Connection(url=server.url if server else args.url, reconnect_delay=0.2)
    conn.on("close", lambda e: print(f"close: code={e.code} will_reconnect={e.will_reconnect}"))
    conn.on("open", lambda e: print(f"open: reconnected={e.reconnected}"))
    conn.on("error", lambda e: print("error:", e.message))
    try:
        conn.connect(timeout=10)
        conn.subscribe({"ticks": "R_100"}, on_tick)
        return 0 if done.wait(60) else 1
    finally:
        conn.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
