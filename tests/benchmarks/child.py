"""One measurement in a fresh process: ``python child.py ADAPTER SCENARIO [options]``.

Prints one line ``RESULT {json}`` on stdout. ``run.py`` starts one of these per measurement.
With ``--no-orjson`` a ``sys.meta_path`` finder makes ``import orjson`` fail before any client
library is imported, so the run sees a default install (no speed extra). ``--msg-listener``,
``--max-queue``, ``--wsaccel`` and ``--decoder`` select the client's variant (see adapters.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.abc
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import adapters
import feeder
import floor

REPO = Path(__file__).resolve().parents[2]
PING = {"ping": 1}


class _HideOrjson(importlib.abc.MetaPathFinder):
    """Makes ``import orjson`` raise ModuleNotFoundError, as on an install without it."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "orjson" or name.startswith("orjson."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by benchmark)", name=name)


class Counter:
    """The listener every client hands its decoded messages to: counts, times first and last."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.finished = False
        self.first = self.last = self.cpu_first = self.cpu_last = 0.0
        self.first_msg: Any = None
        self.last_msg: Any = None
        self.done = threading.Event()
        self.on_finish: Any = None

    def __call__(self, data: Any) -> None:
        seen = self.seen = self.seen + 1
        if seen == 1:
            self.first, self.cpu_first = time.perf_counter(), time.process_time()
            self.first_msg = data
        elif seen == self.count:
            self.last, self.cpu_last = time.perf_counter(), time.process_time()
            self.last_msg = data
            self.finished = True
            self.done.set()
            if self.on_finish is not None:
                self.on_finish()

    # python-deriv-api hands messages to an Rx observer
    on_next = __call__

    def on_error(self, error: BaseException) -> None:
        self.error = error
        if self.on_finish is not None:
            self.on_finish()

    def on_completed(self) -> None:
        if self.on_finish is not None:
            self.on_finish()

    def result(self) -> dict[str, Any]:
        if not self.finished:
            if getattr(self, "error", None) is not None:
                raise RuntimeError(f"stream failed: {self.error!r}")
            raise RuntimeError(f"stream stopped after {self.seen} of {self.count} messages")
        for msg in (self.first_msg, self.last_msg):
            if not (isinstance(msg, dict) and msg.get("msg_type") == "tick"):
                raise RuntimeError(f"not a decoded tick: {msg!r:.200}")
        spans = self.count - 1
        return {
            "ticks_per_s": spans / (self.last - self.first),
            "cpu_us_per_msg": (self.cpu_last - self.cpu_first) / spans * 1e6,
            "messages": self.seen,
        }


class StreamCount:
    """A bot's stream listener in the mixed scenario: reads the quote, counts."""

    def __init__(self) -> None:
        self.n = 0
        self.quote: Any = None

    def __call__(self, msg: Any) -> None:
        self.quote = msg["tick"]["quote"]
        self.n += 1


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1e6

    return {"p50_us": pick(0.50), "p90_us": pick(0.90), "p99_us": pick(0.99)}


def _proc_status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def make(client: str, opts: argparse.Namespace, threaded: bool = False, msg: bool = False) -> Any:
    """The adapter of ``client`` in the variant the options name."""
    variant: dict[str, Any] = {}
    if client in ("wsapp", "wsc-lowlevel"):
        variant["wsaccel"] = opts.wsaccel
    elif client == "deriv_sdk" and opts.max_queue != adapters.DEFAULT:
        variant["max_queue"] = None if opts.max_queue == "none" else int(opts.max_queue)
    elif client == "floor":
        variant["decoder"] = opts.decoder
    listener = msg or opts.msg_listener
    return adapters.ADAPTERS[client](threaded=threaded, message_listener=listener, **variant)


def _timed_requests(conn: Any, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        reply = conn.request(PING)
        latencies.append(time.perf_counter() - start)
    if reply.get("ping") != "pong":
        raise RuntimeError(f"bad ping reply {reply!r}")
    return latencies


def scenario_stream(client: str, url: str, opts: argparse.Namespace) -> dict[str, Any]:
    counter = Counter(opts.ticks)
    extra: dict[str, Any] = {}
    if client in ("json-only", "orjson-only"):  # decoding alone, no network: the JSON ceiling
        loads = json.loads if client == "json-only" else __import__("orjson").loads
        for payload in feeder.tick_payloads(opts.ticks):
            counter(loads(payload))
    elif client == "deriv-api":
        asyncio.run(adapters.derivapi_stream(url, counter))
    elif client == "raw-drain":
        size = sum(len(feeder.frame(p)) for p in feeder.tick_payloads(opts.ticks))
        raw = floor.RawDrainClient()
        raw.connect(url)
        raw.drain(size)
        raw.close()
        if raw.frames != opts.ticks:
            raise RuntimeError(f"raw drain got {raw.frames} of {opts.ticks} frames")
        return {
            "ticks_per_s": raw.frames / (raw.last - raw.first),
            "cpu_us_per_msg": (raw.cpu_last - raw.cpu_first) / raw.frames * 1e6,
            "mb_per_s": raw.bytes / (raw.last - raw.first) / 1e6,
            "messages": raw.frames,
        }
    else:
        conn = make(client, opts)
        conn.connect(url)
        conn.stream(counter)
        if not counter.done.wait(600):
            raise RuntimeError(f"stream timed out after {counter.seen} messages")
        if opts.msg_listener:  # its listener may run just after the stream's own
            deadline = time.monotonic() + 5
            while conn.messages < opts.ticks and time.monotonic() < deadline:
                time.sleep(0.01)
            if conn.messages < opts.ticks:
                raise RuntimeError(f"message listener saw {conn.messages} of {opts.ticks}")
            extra["message_events"] = conn.messages
        conn.close()
    return {**counter.result(), **extra}


def scenario_rtt(client: str, url: str, opts: argparse.Namespace) -> dict[str, Any]:
    if client == "deriv-api":
        latencies = asyncio.run(adapters.derivapi_rtt(url, opts.pings, warmup=opts.warmup))
    else:
        conn = make(client, opts)
        conn.connect(url)
        for _ in range(opts.warmup):  # warm up caches, allocators and the server's thread
            conn.request(PING)
        latencies = _timed_requests(conn, opts.pings)
        conn.close()
    return {**_percentiles(latencies), "mean_us": statistics.fmean(latencies) * 1e6}


def scenario_mixed(client: str, url: str, opts: argparse.Namespace) -> dict[str, Any]:
    """Latency while streaming: paced streams, a message listener, sequential requests."""
    symbols = list(feeder.SYMBOLS)[: opts.streams]
    conn = make(client, opts, msg=True)
    conn.connect(url)
    streams = [StreamCount() for _ in symbols]
    for symbol, listener in zip(symbols, streams, strict=True):
        conn.subscribe({"ticks": symbol}, listener)
    # Warm up, and go on until every stream is seen flowing (requests, not sleeps: the floor
    # client reads only while one of its calls waits).
    deadline = time.monotonic() + 10
    done = 0
    while done < opts.warmup or min(s.n for s in streams) < 3:
        conn.request(PING)
        done += 1
        if time.monotonic() > deadline:
            raise RuntimeError(f"streams not flowing: {[s.n for s in streams]}")
    before = [s.n for s in streams]
    start = time.perf_counter()
    latencies = _timed_requests(conn, opts.mixed_pings)
    elapsed = time.perf_counter() - start
    during = [s.n - b for s, b in zip(streams, before, strict=True)]
    messages = conn.messages
    conn.close()
    if min(during) == 0:
        raise RuntimeError(f"a stream was silent while requests ran: {during}")
    if messages < sum(s.n for s in streams):
        raise RuntimeError(f"message listener saw {messages}, streams {sum(during)}")
    return {
        **_percentiles(latencies),
        "mean_us": statistics.fmean(latencies) * 1e6,
        "stream_msgs_per_s": sum(during) / elapsed,
        "stream_msgs_expected_per_s": opts.rate * len(symbols),
        "stream_msgs": sum(during),
        "message_events": messages,
    }


def scenario_threads(client: str, url: str, opts: argparse.Namespace) -> dict[str, Any]:
    conn = make(client, opts, threaded=True)
    conn.connect(url)
    for _ in range(100):
        conn.request(PING)
    barrier = threading.Barrier(opts.threads + 1)
    per_thread: list[list[float]] = [[] for _ in range(opts.threads)]
    errors: list[BaseException] = []

    def work(out: list[float]) -> None:
        barrier.wait()
        try:
            for _ in range(opts.per_thread):
                start = time.perf_counter()
                conn.request(PING)
                out.append(time.perf_counter() - start)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(out,)) for out in per_thread]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join(600)
    elapsed = time.perf_counter() - start
    conn.close()
    if errors:
        raise RuntimeError(f"{len(errors)} worker(s) failed: {errors[0]!r}")
    latencies = [x for out in per_thread for x in out]
    return {"req_per_s": len(latencies) / elapsed, "p99_us": _percentiles(latencies)["p99_us"]}


def scenario_idle(client: str, url: str, opts: argparse.Namespace) -> dict[str, Any]:
    warm = make(client, opts)  # one connection first, so imports and lazy set-up are not counted
    warm.connect(url)
    warm.close()
    time.sleep(0.2)
    gc.collect()
    rss0, threads0 = _proc_status("VmRSS"), _proc_status("Threads")
    conns = []
    for _ in range(opts.idle):
        conn = make(client, opts)
        conn.connect(url)
        conns.append(conn)
    time.sleep(0.5)
    gc.collect()
    rss1, threads1 = _proc_status("VmRSS"), _proc_status("Threads")
    # not closed one by one: that is not measured and can be slow; os._exit ends them all
    return {
        "rss_kib_per_conn": (rss1 - rss0) / opts.idle,
        "threads_per_conn": (threads1 - threads0) / opts.idle,
        "rss_delta_kib": rss1 - rss0,
    }


def scenario_setup(client: str, url: str, opts: argparse.Namespace) -> dict[str, Any]:
    times = []
    for i in range(opts.connects + 2):
        start = time.perf_counter()
        conn = make(client, opts)
        conn.connect(url)
        took = time.perf_counter() - start
        conn.close()
        if i >= 2:  # the first two warm up imports and the server
            times.append(took)
    return {"median_us": statistics.median(times) * 1e6, "max_us": max(times) * 1e6}


SCENARIOS = {
    "stream": scenario_stream,
    "rtt": scenario_rtt,
    "mixed": scenario_mixed,
    "threads": scenario_threads,
    "idle": scenario_idle,
    "setup": scenario_setup,
}


def _facts() -> dict[str, Any]:
    """What this process actually ran with, for run.py to check against the client's claim."""
    facts: dict[str, Any] = {
        "orjson_loaded": "orjson" in sys.modules,
        "wsaccel_loaded": "wsaccel" in sys.modules,
    }
    if "websocket" in sys.modules:
        facts["wsaccel_in_use"] = adapters.wsaccel_in_use()
    if "deriv_sdk" in sys.modules:
        facts["deriv_sdk_file"] = sys.modules["deriv_sdk"].__file__
        param = adapters.sdk_parameter("max_queue")
        default = "no such keyword" if param is None else param.default
        facts["sdk_max_queue_default"] = default if default is None else str(default)
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("client")
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--url", default="")
    parser.add_argument("--no-orjson", action="store_true")
    parser.add_argument("--msg-listener", action="store_true")
    parser.add_argument("--max-queue", default=adapters.DEFAULT, help="deriv_sdk: N or none")
    parser.add_argument("--wsaccel", choices=("any", "required", "forbidden"), default="any")
    parser.add_argument("--decoder", choices=("json", "orjson"), default="json")
    parser.add_argument("--ticks", type=int, default=100_000)
    parser.add_argument("--pings", type=int, default=5_000)
    parser.add_argument("--mixed-pings", type=int, default=2_000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--streams", type=int, default=5)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=1_000)
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--connects", type=int, default=50)
    opts = parser.parse_args()
    if opts.no_orjson:
        sys.meta_path.insert(0, _HideOrjson())
    sys.path.append(str(REPO))  # deriv_sdk from this checkout when it is not installed
    result = SCENARIOS[opts.scenario](opts.client, opts.url, opts)
    result.update(_facts())
    if opts.max_queue != adapters.DEFAULT:
        result["max_queue"] = opts.max_queue
    print("RESULT " + json.dumps(result), flush=True)
    os._exit(0)  # do not wait for library threads a client may have left behind


if __name__ == "__main__":
    main()
