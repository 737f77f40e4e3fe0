"""Deriv's first guide program, ported line for line: send a ping, print what comes back.

The guide's JavaScript opens ``new WebSocket(url)`` and adds ``open``, ``message``, ``close``
and ``error`` listeners; so does this. The guide's ``setInterval(ping, ...)`` keepalive is
built into the SDK (a ping every 30 s). The guide runs forever; this closes after the pong.

    python examples/ping.py --local        # against a LocalServer started in-process
    python examples/ping.py                # against Deriv's public server (app_id 1089)
"""

from __future__ import annotations

import argparse

from deriv_sdk import Connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Send a ping, print the pong.")
    parser.add_argument("--url", help="a ws:// or wss:// URL (default: Deriv, app_id 1089)")
    parser.add_argument("--local", action="store_true", help="start a LocalServer in-process")
    args = parser.parse_args(argv)
    server = None
    if args.local:
        from deriv_sdk.testing import LocalServer  # the testing extra, only when asked for

        server = LocalServer().start()
    try:
        url = server.url if server else args.url
        conn = Connection(url=url) if url else Connection(app_id=1089)
        # Listeners run on the SDK's dispatch thread, one at a time.
        conn.on("open", lambda event: conn.send({"ping": 1}))  # ws.send(JSON.stringify(...))

        @conn.on("message")
        def on_message(event):  # event.data is JSON.parse(data.data)
            print("received:", event.data)
            if event.msg_type == "ping":
                conn.close()  # the guide keeps going; we are done

        conn.on("close", lambda event: print("closed:", event.code, event.was_clean))
        conn.on("error", lambda event: print("error:", event.message))
        conn.connect()  # returns at once, like new WebSocket(url)
        conn.wait()  # blocks until closed; Ctrl-C closes cleanly
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
