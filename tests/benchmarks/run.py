"""Benchmark runner: every client, every scenario, fresh processes, interleaved repetitions.

    python tests/benchmarks/run.py [--reps 5] [--ticks 100000] [--only stream,rtt]
                                   [--clients wsapp-wsaccel,deriv_sdk] [--markdown] [--out FILE]
    python tests/benchmarks/run.py --smoke     # tiny sizes, one repetition: does it still work?

Each measurement is one ``child.py`` process against its own ``feeder.py`` process. Repetition
r runs every scenario for every client (client order rotated by r) before repetition r+1
starts, so slow drifts of a noisy machine hit all clients alike. Ratios are taken against
``wsapp-wsaccel`` (websocket-client's WebSocketApp with wsaccel, the reference) within the same
repetition, then the median of those ratios is reported; ``wsapp`` (no wsaccel) is the second
baseline column. See README.md for what each number means.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from report import REFERENCE, headline, load_before, summarize, tables, verdicts

HERE = Path(__file__).resolve().parent
ALL = ("stream", "rtt", "mixed", "threads", "idle", "setup")
REPO = HERE.parents[1]
BEFORE = HERE / "results" / "2026-12-01-before.json"
SIZES: tuple[str, ...] = ("reps", "ticks", "pings", "mixed_pings", "warmup", "streams", "rate")
SIZES += ("threads", "per_thread", "idle", "connects")


@dataclass
class Client:
    name: str
    label: str
    scenarios: tuple[str, ...] = ALL
    adapter: str = ""
    args: tuple[str, ...] = ()
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)
    network: bool = True
    check: str = ""  # code that must run in the client's interpreter, else the client is skipped


def all_clients(opts: argparse.Namespace) -> list[Client]:
    """Every client of the suite (whether it can run here is decided by ``client_table``)."""
    plain = ("--no-orjson",)
    no_orjson = {"DERIV_SDK_NO_ORJSON": "1"}
    accel = {"PYTHONPATH": opts.wsaccel_path}
    sdk = "import deriv_sdk; deriv_sdk.Connection"
    max_queue = (
        "import inspect, deriv_sdk\n"
        "if 'max_queue' not in inspect.signature(deriv_sdk.Connection).parameters:\n"
        "    raise SystemExit('the installed deriv_sdk.Connection has no max_queue keyword')"
    )
    return [
        Client(
            REFERENCE,
            "WebSocketApp defaults + wsaccel, json.loads in on_message: the reference (1.00x)",
            adapter="wsapp",
            args=("--wsaccel", "required"),
            env=accel,
            check="import wsaccel, websocket",
        ),
        Client(
            "wsapp",
            "WebSocketApp defaults, plain install (no wsaccel): the second baseline",
            adapter="wsapp",
            args=("--wsaccel", "forbidden"),
        ),
        Client(
            "wsc-lowlevel",
            "websocket-client create_connection + recv() on the caller's thread, wsaccel",
            ("stream", "rtt", "threads", "idle", "setup"),
            "wsc-lowlevel",
            ("--wsaccel", "required"),
            env=accel,
            check="import wsaccel, websocket",
        ),
        Client(
            "floor-json",
            "floor: minimal hand-written client (raw socket, one thread), json",
            ("stream", "rtt", "mixed"),
            "floor",
            ("--decoder", "json", *plain),
        ),
        Client(
            "floor-orjson",
            "floor: the same, orjson",
            ("stream", "rtt", "mixed"),
            "floor",
            ("--decoder", "orjson"),
            check="import orjson",
        ),
        Client(
            "deriv_sdk",
            "deriv_sdk default install (json), no message listener",
            ("stream", "rtt", "threads", "idle", "setup"),
            "deriv_sdk",
            plain,
            env=no_orjson,
            check=sdk,
        ),
        Client(
            "deriv_sdk+msg",
            "deriv_sdk default install, a message listener",
            ("stream", "rtt", "mixed", "threads"),
            "deriv_sdk",
            (*plain, "--msg-listener"),
            env=no_orjson,
            check=sdk,
        ),
        Client(
            "deriv_sdk-orjson",
            "deriv_sdk[speed] (orjson), no message listener",
            ("stream", "rtt", "threads"),
            "deriv_sdk",
            check=sdk + "; import orjson",
        ),
        Client(
            "deriv_sdk-orjson+msg",
            "deriv_sdk[speed], a message listener",
            ("stream", "rtt", "mixed"),
            "deriv_sdk",
            ("--msg-listener",),
            check=sdk + "; import orjson",
        ),
        Client(
            "deriv_sdk-unbounded",
            "deriv_sdk default install, max_queue=None (unbounded), no message listener",
            ("stream",),
            "deriv_sdk",
            (*plain, "--max-queue", "none"),
            env=no_orjson,
            check=max_queue,
        ),
        Client(
            "deriv-api",
            "python-deriv-api (asyncio)",
            ("stream", "rtt"),
            "deriv-api",
            python=opts.deriv_api_python,
            check="import deriv_api",
        ),
        Client("raw-drain", "raw byte drain (feeder + loopback limit)", ("stream",)),
        Client("json-only", "json.loads + callback, no network", ("stream",), network=False),
        Client(
            "orjson-only",
            "orjson.loads + callback, no network",
            ("stream",),
            network=False,
            check="import orjson",
        ),
    ]


def client_table(opts: argparse.Namespace) -> tuple[list[Client], list[str]]:
    """All wanted clients that can run here, and a note for each one that cannot.

    Raises:
        SystemExit: The reference (WebSocketApp with wsaccel) is wanted but cannot run: every
            ratio is taken against it, so the run stops instead of falling back.
    """
    notes = []
    usable = []
    for client in all_clients(opts):
        if opts.clients and client.name not in opts.clients:
            continue
        if not set(client.scenarios) & set(opts.only):
            continue
        why = ""
        if client.env.get("PYTHONPATH") == "":
            why = "no --wsaccel-path (or BENCH_WSACCEL_PATH)"
        elif client.check:
            proc = subprocess.run(
                [client.python, "-c", client.check],
                env=child_env(client),
                text=True,
                capture_output=True,
            )
            if proc.returncode:
                why = (proc.stderr.strip().splitlines() or ["?"])[-1]
        if why and client.name == REFERENCE:
            raise SystemExit(
                f"error: the reference {REFERENCE} cannot run: {why}. Install wsaccel "
                "(pip install --target /tmp/bench-wsaccel wsaccel) and pass --wsaccel-path, "
                f"or leave {REFERENCE} out with --clients (then no ratio has a reference)."
            )
        if why:
            notes.append(f"{client.name}: skipped: {why}")
            continue
        usable.append(client)
    if opts.clients:
        unknown = set(opts.clients) - {c.name for c in all_clients(opts)}
        if unknown:
            raise SystemExit(f"error: unknown client(s): {', '.join(sorted(unknown))}")
    if not any(c.name == REFERENCE for c in usable):
        notes.append(f"{REFERENCE} (the reference) not in this run: the ratio columns are empty")
    return usable, notes


def child_env(client: Client) -> dict[str, str]:
    """The environment of a child: this checkout importable, plus the client's extras."""
    paths = [client.env.get("PYTHONPATH", ""), str(REPO)]
    return {**os.environ, **client.env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def start_feeder(ticks: int, rate: float, cache: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, str(HERE / "feeder.py"), "--ticks", str(ticks), "--rate", str(rate)]
    proc = subprocess.Popen(
        [*cmd, "--cache", cache],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"feeder did not start: {line!r}")
    return proc, f"ws://127.0.0.1:{line.split()[1]}/websockets/v3?app_id=1089&l=EN&brand=deriv"


def measure(client: Client, scenario: str, opts: argparse.Namespace) -> dict[str, Any]:
    """One measurement: a fresh feeder and a fresh client process."""
    feeder = None
    url = ""
    if client.network:
        ticks = opts.ticks if scenario == "stream" else 0
        feeder, url = start_feeder(ticks, opts.rate if scenario == "mixed" else 0.0, opts.cache)
    adapter = client.adapter or client.name
    cmd = [client.python, str(HERE / "child.py"), adapter, scenario, "--url", url, *client.args]
    cmd += ["--ticks", str(opts.ticks), "--pings", str(opts.pings), "--idle", str(opts.idle)]
    cmd += ["--threads", str(opts.threads), "--per-thread", str(opts.per_thread)]
    cmd += ["--connects", str(opts.connects), "--mixed-pings", str(opts.mixed_pings)]
    cmd += ["--streams", str(opts.streams), "--rate", str(opts.rate), "--warmup", str(opts.warmup)]
    try:
        proc = subprocess.run(
            cmd, env=child_env(client), capture_output=True, text=True, timeout=opts.timeout
        )
        lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return {"error": f"exit {proc.returncode}: {tail}"}
        result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
        return {**result, "error": problem} if (problem := _check(client, result)) else result
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {opts.timeout}s"}
    finally:
        if feeder is not None:
            feeder.kill()
            feeder.wait()


def _check(client: Client, result: dict[str, Any]) -> str:
    """What makes a result not the configuration it claims to be ("" when nothing)."""
    if "--no-orjson" in client.args and result.get("orjson_loaded"):
        return "orjson was loaded although hidden"
    if client.check.endswith("import orjson") and not result.get("orjson_loaded"):
        return "orjson was not loaded"
    if "required" in client.args and result.get("wsaccel_in_use") is not True:
        return "wsaccel was not in use by websocket-client"
    if "forbidden" in client.args and result.get("wsaccel_loaded"):
        return "wsaccel was loaded: this baseline is a plain websocket-client install"
    if "--max-queue" in client.args and "max_queue" not in result:
        return "max_queue was not passed"
    sdk_file = result.get("deriv_sdk_file")
    if sdk_file and not Path(sdk_file).resolve().is_relative_to(REPO / "deriv_sdk"):
        return f"deriv_sdk imported from {sdk_file}, not from this checkout"
    return ""


def sdk_fingerprint() -> str:
    """A hash of the SDK's source as it is on disk (others edit it while we measure)."""
    digest = hashlib.sha1()
    for path in sorted((REPO / "deriv_sdk").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _git_state() -> str:
    """HEAD, plus a warning when deriv_sdk/ differs from it (the SDK is measured as it is)."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return proc.stdout.strip()

    dirty = git("status", "--porcelain", "--", "deriv_sdk")
    head = git("rev-parse", "--short", "HEAD")
    sdk = git("log", "-1", "--format=%h", "--", "deriv_sdk")
    state = head if sdk == head else f"{head}, deriv_sdk/ as of {sdk}"
    return state + (" + uncommitted deriv_sdk changes" * bool(dirty))


def versions(clients: list[Client]) -> dict[str, str]:
    """Versions of the libraries each client ran with, as its own interpreter sees them."""
    wanted = {
        REFERENCE: ("websocket-client", "wsaccel"),
        "wsapp": ("websocket-client",),
        "deriv_sdk-orjson": ("orjson",),
        "deriv-api": ("python-deriv-api", "websockets"),
    }
    out: dict[str, str] = {}
    for client in clients:
        for dist in wanted.get(client.name, ()):
            code = f"import importlib.metadata as m; print(m.version({dist!r}))"
            proc = subprocess.run(
                [client.python, "-c", code], env=child_env(client), capture_output=True, text=True
            )
            out[f"{client.name}: {dist}"] = proc.stdout.strip() or "?"
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=100_000, help="stream: messages")
    parser.add_argument("--pings", type=int, default=5_000, help="rtt: timed requests")
    parser.add_argument("--mixed-pings", type=int, default=2_000, help="mixed: timed requests")
    parser.add_argument("--warmup", type=int, default=200, help="rtt, mixed: untimed requests")
    parser.add_argument("--streams", type=int, default=5, help="mixed: subscriptions (<= 5)")
    parser.add_argument("--rate", type=float, default=100.0, help="mixed: ticks/s per stream")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=1_000)
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--connects", type=int, default=50)
    parser.add_argument("--only", help="comma-separated scenarios: " + ",".join(ALL))
    parser.add_argument("--clients", help="comma-separated client names (default: all usable)")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--out", help="write raw runs and summary as JSON to this file")
    parser.add_argument(
        "--before",
        default=str(BEFORE) if BEFORE.exists() else "",
        help="a results JSON for the 'no worse than today' targets (default: %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per measurement, seconds")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument(
        "--deriv-api-python",
        default=os.environ.get("DERIV_API_PYTHON", sys.executable),
        help="python of a venv with python-deriv-api (it pins websockets==10.3)",
    )
    parser.add_argument(
        "--wsaccel-path",
        default=os.environ.get("BENCH_WSACCEL_PATH", ""),
        help="a directory holding wsaccel (pip install --target DIR wsaccel)",
    )
    opts = parser.parse_args(argv)
    if opts.smoke:
        opts.reps, opts.ticks, opts.pings, opts.per_thread = 1, 2_000, 200, 50
        opts.mixed_pings, opts.warmup, opts.idle, opts.connects = 200, 20, 5, 5
        opts.timeout = 120.0
    opts.only = opts.only.split(",") if opts.only else list(ALL)
    opts.clients = opts.clients.split(",") if opts.clients else None
    if set(opts.only) - set(ALL):
        parser.error(f"unknown scenario in --only; choose from {','.join(ALL)}")
    if not 1 <= opts.streams <= 5:
        parser.error("--streams must be 1 to 5")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    clients, notes = client_table(opts)
    for note in notes:
        print("note:", note, file=sys.stderr)
    runs: list[dict[str, Any]] = []
    started = time.time()
    cache = tempfile.TemporaryDirectory(prefix="deriv-sdk-bench-")
    opts.cache = cache.name  # the feeders build the burst once per run, not per measurement
    git_state = _git_state()  # before the run: the SDK may change under a long one
    for rep in range(opts.reps):
        sdk_before = sdk_fingerprint()
        order = clients[rep % len(clients) :] + clients[: rep % len(clients)]
        for scenario in opts.only:
            for client in order:
                if scenario not in client.scenarios:
                    continue
                began = time.perf_counter()
                result = measure(client, scenario, opts)
                result["seconds"] = round(time.perf_counter() - began, 2)
                runs.append(
                    {"rep": rep, "scenario": scenario, "client": client.name, "result": result}
                )
                shown = result.get("error") or {
                    k: round(v, 1) for k, v in result.items() if isinstance(v, float)
                }
                print(
                    f"rep {rep + 1}/{opts.reps} {scenario:7} {client.name:20} {shown}",
                    file=sys.stderr,
                    flush=True,
                )
        if sdk_fingerprint() != sdk_before:
            notes.append(f"deriv_sdk/ changed during repetition {rep + 1}: its rows mix versions")
            print("note:", notes[-1], file=sys.stderr)
    cache.cleanup()
    summary = summarize(runs)
    labels = {c.name: c.label for c in clients}
    before = None
    if opts.before and not (opts.out and Path(opts.before).resolve() == Path(opts.out).resolve()):
        before = load_before(opts.before)
    command = "python tests/benchmarks/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    sdk_rows = [
        r for r in runs if r["client"].startswith("deriv_sdk") and "error" not in r["result"]
    ]
    queue_default = next((r["result"].get("sdk_max_queue_default") for r in sdk_rows), None)
    notes.append(
        "deriv_sdk rows: Connection(url=...) with the defaults a user gets (keepalive on, "
        f"reconnect on, max_queue default: {queue_default}) unless the row says otherwise"
    )
    meta = {
        "argv": sys.argv[1:] if argv is None else argv,
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus {platform.platform()}",
        "sizes": {k: getattr(opts, k) for k in SIZES},
        "notes": notes,
        "git": git_state,
        "sdk_fingerprint": sdk_fingerprint(),
        "clients": labels,
        "versions": versions(clients),
        "before": opts.before if before else "",
    }
    print(headline(summary, meta, opts.markdown))
    print(tables(summary, labels, opts.markdown))
    print(verdicts(runs, opts.markdown, before))
    for note in notes:
        print(("- " if opts.markdown else "note: ") + note)
    failed = [r for r in runs if "error" in r["result"]]
    if opts.out:
        data = {"meta": meta, "runs": runs, "summary": summary}
        Path(opts.out).write_text(json.dumps(data, indent=1) + "\n")
    if failed:
        print(f"{len(failed)} measurement(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
