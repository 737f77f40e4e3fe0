"""A Tkinter window fed from the SDK's threads, the right way: Tk is touched only by the
thread running ``mainloop()``. Listeners run on the SDK's dispatch thread, so ``on_tick`` only
queues data; the GUI thread polls the queue with ``root.after``. Try ``--local``.
"""

import argparse
import contextlib
import queue

from deriv_sdk import Connection


class TickFeed:  # the data path: SDK thread -> queue -> GUI thread
    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[int, float]] = queue.Queue()
        self.shown = 0

    def on_tick(self, message: dict) -> None:  # the SDK's dispatch thread: no Tk here
        self.queue.put((message["tick"]["epoch"], message["tick"]["quote"]))

    def drain(self) -> list[tuple[int, float]]:  # the GUI thread
        items = [self.queue.get_nowait() for _ in range(self.queue.qsize())]
        self.shown += len(items)
        return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A live R_100 ticker window.")
    parser.add_argument("--count", type=int, default=20, help="quit after N ticks")
    parser.add_argument("--url", help="a ws:// or wss:// URL (default: Deriv)")
    parser.add_argument("--local", action="store_true", help="start a LocalServer")
    args = parser.parse_args(argv)
    import tkinter as tk  # after parsing, so --help works without Tk

    feed = TickFeed()
    with contextlib.ExitStack() as stack:  # closes the connection, then stops the server
        if args.local:
            from deriv_sdk.testing import LocalServer

            args.url = stack.enter_context(LocalServer(tick_interval=0.1)).url
        conn = stack.enter_context(Connection(url=args.url))
        label = tk.Label(root := tk.Tk(), text="waiting...", font=("TkFixedFont", 24))
        label.pack(padx=20, pady=20)
        conn.subscribe({"ticks": "R_100"}, feed.on_tick)

        def poll() -> None:  # the GUI thread, every 100 ms
            for epoch, quote in feed.drain():
                label.config(text=f"{quote}  ({epoch})")
                print(epoch, quote, flush=True)
            root.after(100, poll) if feed.shown < args.count else root.destroy()

        poll()
        root.mainloop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
