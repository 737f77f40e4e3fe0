"""Many worker threads sharing one connection: ``request()`` is safe from any thread.

Each answer is matched to its request by ``req_id``, so the threads never see each other's.

    python examples/threads.py --local --workers 8 --requests 25
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from deriv_sdk import Connection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Many threads, one connection.")
    parser.add_argument("--workers", type=int, default=8, help="threads (default 8)")
    parser.add_argument("--requests", type=int, default=25, help="calls per thread (default 25)")
    parser.add_argument("--url", help="a ws:// or wss:// URL (default: Deriv, app_id 1089)")
    parser.add_argument("--local", action="store_true", help="start a LocalServer in-process")
    args = parser.parse_args(argv)
    server = None
    if args.local:
        from deriv_sdk.testing import LocalServer

        server = LocalServer().start()
    try:
        with Connection(url=server.url if server else args.url) as conn:

            def worker(n: int) -> int:  # each call blocks only its own thread
                ok = 0
                for i in range(args.requests):
                    tag = {"worker": n, "i": i}
                    answer = conn.request({"ping": 1, "passthrough": tag})
                    ok += answer["echo_req"]["passthrough"] == tag and answer["ping"] == "pong"
                return ok

            start = time.monotonic()
            with ThreadPoolExecutor(args.workers, thread_name_prefix="worker") as pool:
                counts = list(pool.map(worker, range(args.workers)))
            elapsed = time.monotonic() - start
            total = args.workers * args.requests
            print(f"{sum(counts)}/{total} answers matched, {total / elapsed:.0f} requests/s")
            return 0 if sum(counts) == total else 1
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
