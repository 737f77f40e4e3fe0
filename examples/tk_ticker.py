"""A Tkinter window fed from the SDK's threads, the right way.

Tk may only be touched from the thread that runs ``mainloop()``. Listeners run on the SDK's
dispatch thread, so ``TickFeed.on_tick`` only puts data on a ``queue.Queue``; the GUI thread
polls it with ``root.after`` and updates the label. ``TickFeed`` needs no display.

    python examples/tk_ticker.py --local --count 20      # or --seconds 10, or --url URL
"""

from __future__ import annotations

import argparse
import queue
import time

from deriv_sdk import Connection


class TickFeed:
    """The data path: SDK thread -> queue -> GUI thread."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[int, float]] = queue.Queue()
        self.shown = 0

    def on_tick(self, message: dict) -> None:  # the SDK's dispatch thread: no Tk here
        self.queue.put((message["tick"]["epoch"], message["tick"]["quote"]))

    def drain(self) -> list[tuple[int, float]]:  # the GUI thread
        items = []
        while True:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                self.shown += len(items)
                return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A live R_100 ticker window.")
    parser.add_argument("--count", type=int, help="quit after N ticks")
    parser.add_argument("--seconds", type=float, help="quit after S seconds")
    parser.add_argument("--url", help="a ws:// or wss:// URL (default: Deriv, app_id 1089)")
    parser.add_argument("--local", action="store_true", help="start a LocalServer in-process")
    args = parser.parse_args(argv)
    import tkinter as tk  # after parsing, so --help works without Tk

    server = None
    if args.local:
        from deriv_sdk.testing import LocalServer

        server = LocalServer(tick_interval=0.1).start()
    feed, end = TickFeed(), time.monotonic() + (args.seconds or float("inf"))
    try:
        with Connection(url=server.url if server else args.url) as conn:
            root = tk.Tk()
            root.title("R_100")
            label = tk.Label(root, text="waiting...", font=("TkFixedFont", 24), width=24)
            label.pack(padx=20, pady=20)
            conn.subscribe({"ticks": "R_100"}, feed.on_tick)

            def poll() -> None:  # runs on the GUI thread, every 100 ms
                for epoch, quote in feed.drain():
                    label.config(text=f"{quote}  ({epoch})")
                    print(epoch, quote, flush=True)
                if (args.count and feed.shown >= args.count) or time.monotonic() > end:
                    root.destroy()
                else:
                    root.after(100, poll)

            root.after(100, poll)
            root.mainloop()
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
