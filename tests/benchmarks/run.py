"""Benchmark runner: every client, every scenario, fresh processes, interleaved repetitions.

    python tests/benchmarks/run.py [--reps 5] [--ticks 200000] [--only stream,rtt]
                                   [--clients wsapp,deriv_sdk] [--markdown] [--out FILE]
    python tests/benchmarks/run.py --smoke     # tiny sizes, one repetition: does it still work?

Each measurement is one ``child.py`` process against its own ``feeder.py`` process. Repetition
r runs every scenario for every client (client order rotated by r) before repetition r+1
starts, so slow drifts of a noisy machine hit all clients alike. Ratios are taken against
``wsapp`` (websocket-client's WebSocketApp with default settings) within the same repetition,
then the median of those ratios is reported. See README.md for what each number means.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from report import summarize, tables, verdicts

HERE = Path(__file__).resolve().parent
ALL = ("stream", "rtt", "threads", "idle", "setup")

REPO = HERE.parents[1]


@dataclass
class Client:
    name: str
    label: str
    scenarios: tuple[str, ...] = ALL
    python: str = sys.executable
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    network: bool = True


def client_table(opts: argparse.Namespace) -> tuple[list[Client], list[str]]:
    """All clients that can run here, and a note for each one that cannot."""
    no_orjson = {"DERIV_SDK_NO_ORJSON": "1"}
    clients = [
        Client("wsapp", "WebSocketApp defaults (json.loads)"),
        Client("wsc-lowlevel", "websocket-client create_connection + recv()"),
        Client("deriv_sdk", "deriv_sdk, default install", args=("--no-orjson",), env=no_orjson),
        Client(
            "deriv_sdk-orjson", "deriv_sdk + speed extra (orjson)", ("stream", "rtt", "threads")
        ),
        Client("deriv-api", "python-deriv-api (asyncio)", ("stream", "rtt"), opts.deriv_api_python),
        Client("wsapp-wsaccel", "WebSocketApp + wsaccel", env={"PYTHONPATH": opts.wsaccel_path}),
        Client("raw-drain", "raw byte drain (feeder + loopback limit)", ("stream",)),
        Client("json-only", "json.loads + callback, no network", ("stream",), network=False),
        Client("orjson-only", "orjson.loads + callback, no network", ("stream",), network=False),
    ]
    notes = []
    checks = {
        "deriv_sdk": "import deriv_sdk; deriv_sdk.Connection",
        "deriv_sdk-orjson": "import deriv_sdk, orjson; deriv_sdk.Connection",
        "deriv-api": "import deriv_api",
        "wsapp-wsaccel": "import wsaccel, websocket",
        "orjson-only": "import orjson",
    }
    usable = []
    for client in clients:
        if opts.clients and client.name not in opts.clients:
            continue
        if client.name == "wsapp-wsaccel" and not opts.wsaccel_path:
            notes.append(f"{client.name}: skipped: no --wsaccel-path (or BENCH_WSACCEL_PATH)")
            continue
        if client.name in checks:
            code = checks[client.name]
            proc = subprocess.run(
                [client.python, "-c", code], env=child_env(client), text=True, capture_output=True
            )
            if proc.returncode:
                why = (proc.stderr.strip().splitlines() or ["?"])[-1]
                notes.append(f"{client.name}: skipped: {why}")
                continue
        usable.append(client)
    return usable, notes


def child_env(client: Client) -> dict[str, str]:
    """The environment of a child: this checkout importable, plus the client's extras."""
    paths = [client.env.get("PYTHONPATH", ""), str(REPO)]
    return {**os.environ, **client.env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def start_feeder(ticks: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "feeder.py"), "--ticks", str(ticks)],
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
        feeder, url = start_feeder(opts.ticks if scenario == "stream" else 0)
    adapter = {"deriv_sdk-orjson": "deriv_sdk", "wsapp-wsaccel": "wsapp"}.get(
        client.name, client.name
    )
    cmd = [client.python, str(HERE / "child.py"), adapter, scenario, "--url", url, *client.args]
    cmd += ["--ticks", str(opts.ticks), "--pings", str(opts.pings), "--idle", str(opts.idle)]
    cmd += ["--threads", str(opts.threads), "--per-thread", str(opts.per_thread)]
    cmd += ["--connects", str(opts.connects)]
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
    if client.name == "deriv_sdk-orjson" and not result.get("orjson_loaded"):
        return "deriv_sdk did not load orjson"
    if client.name == "wsapp-wsaccel" and not result.get("wsaccel_loaded"):
        return "wsaccel was not loaded"
    if client.name in ("wsapp", "wsc-lowlevel") and result.get("wsaccel_loaded"):
        return "wsaccel was loaded: the baseline is a plain websocket-client install"
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
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted deriv_sdk changes" * bool(dirty))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--pings", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=1_000)
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--connects", type=int, default=50)
    parser.add_argument("--only", help="comma-separated scenarios: " + ",".join(ALL))
    parser.add_argument("--clients", help="comma-separated client names (default: all usable)")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--out", help="write raw runs and summary as JSON to this file")
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
        opts.idle, opts.connects, opts.timeout = 5, 5, 120.0
    opts.only = opts.only.split(",") if opts.only else list(ALL)
    opts.clients = opts.clients.split(",") if opts.clients else None
    if set(opts.only) - set(ALL):
        parser.error(f"unknown scenario in --only; choose from {','.join(ALL)}")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    clients, notes = client_table(opts)
    for note in notes:
        print("note:", note, file=sys.stderr)
    runs: list[dict[str, Any]] = []
    started = time.time()
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
                    f"rep {rep + 1}/{opts.reps} {scenario:8} {client.name:17} {shown}",
                    file=sys.stderr,
                    flush=True,
                )
        if sdk_fingerprint() != sdk_before:
            notes.append(f"deriv_sdk/ changed during repetition {rep + 1}: its rows mix versions")
            print("note:", notes[-1], file=sys.stderr)
    summary = summarize(runs)
    print(tables(summary, {c.name: c.label for c in clients}, opts.markdown))
    print(verdicts(runs, opts.markdown))
    for note in notes:
        print(("- " if opts.markdown else "note: ") + note)
    failed = [r for r in runs if "error" in r["result"]]
    if opts.out:
        meta = {
            "argv": sys.argv[1:],
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started, 1),
            "python": platform.python_version(),
            "machine": f"{platform.machine()} {os.cpu_count()} cpus {platform.platform()}",
            "sizes": {
                k: getattr(opts, k)
                for k in ("reps", "ticks", "pings", "threads", "per_thread", "idle", "connects")
            },
            "notes": notes,
            "git": git_state,
            "sdk_fingerprint": sdk_fingerprint(),
            "clients": {c.name: c.label for c in clients},
        }
        data = {"meta": meta, "runs": runs, "summary": summary}
        Path(opts.out).write_text(json.dumps(data, indent=1) + "\n")
    if failed:
        print(f"{len(failed)} measurement(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
