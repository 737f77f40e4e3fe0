"""Statistics and tables for run.py: medians, min-max, per-repetition ratios, issue 12's targets.

Also a command of its own, to re-render a saved run (e.g. with another ``--before``)::

    python tests/benchmarks/report.py results.json [--before OLD.json] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from typing import Any

REFERENCE = "wsapp-wsaccel"  # issue 12: WebSocketApp with wsaccel is the 1.00x
SECOND = "wsapp"  # WebSocketApp as a plain `pip install websocket-client` gives it

# scenario -> (metric, label, unit, higher_is_better); the first metric is the headline.
METRICS: dict[str, list[tuple[str, str, str, bool]]] = {
    "stream": [("ticks_per_s", "ticks/s", "", True), ("cpu_us_per_msg", "CPU/msg", "µs", False)],
    "rtt": [
        ("p50_us", "p50", "µs", False),
        ("p90_us", "p90", "µs", False),
        ("p99_us", "p99", "µs", False),
    ],
    "mixed": [
        ("p50_us", "p50", "µs", False),
        ("p90_us", "p90", "µs", False),
        ("p99_us", "p99", "µs", False),
    ],
    "threads": [("req_per_s", "req/s", "", True), ("p99_us", "p99", "µs", False)],
    "idle": [
        ("rss_kib_per_conn", "RSS/conn", "KiB", False),
        ("threads_per_conn", "threads/conn", "", False),
    ],
    "setup": [("median_us", "connect", "µs", False)],
}
TITLES = {
    "stream": "1. Stream: ticks decoded and handed to a listener",
    "rtt": "2. Request round trip, sequential pings",
    "mixed": "3. Latency while streaming: 5 paced streams, a message listener, sequential pings",
    "threads": "4. Threads x requests on one connection",
    "idle": "5. Idle connections in one process",
    "setup": "6. Constructor to open",
}
NO_NETWORK = ("json-only", "orjson-only", "raw-drain")
Values = dict[tuple[str, str, str], dict[int, float]]


@dataclass
class Target:
    """One bound on a figure. ``against``: a client (ratio per repetition), None (absolute)
    or ``"before"`` (the bound is ``bound`` times the before run's figure)."""

    client: str
    scenario: str
    metric: str
    against: str | None
    bound: float
    what: str
    aim: float | None = None

    @property
    def higher(self) -> bool:
        return self.metric in ("ticks_per_s", "req_per_s")


TARGETS = [
    Target("deriv_sdk", "stream", "ticks_per_s", REFERENCE, 2.4, "stream, default install", 2.8),
    Target(
        "deriv_sdk+msg", "stream", "ticks_per_s", REFERENCE, 2.4,
        "stream, default install, message listener", 2.8,
    ),
    Target("deriv_sdk-orjson", "stream", "ticks_per_s", REFERENCE, 5.0, "stream, [speed]"),
    Target(
        "deriv_sdk-orjson+msg", "stream", "ticks_per_s", REFERENCE, 5.0,
        "stream, [speed], message listener",
    ),
    Target(
        "deriv_sdk", "stream", "ticks_per_s", "deriv_sdk-unbounded", 0.95,
        "stream, bounded queue (default max_queue) costs <= 5%",
    ),
    Target("deriv_sdk", "rtt", "p50_us", REFERENCE, 0.75, "request() p50, no listener"),
    Target("deriv_sdk+msg", "rtt", "p50_us", REFERENCE, 0.8, "request() p50, message listener"),
    Target("deriv_sdk", "rtt", "p99_us", REFERENCE, 1.0, "request() p99, no listener"),
    Target("deriv_sdk+msg", "rtt", "p99_us", REFERENCE, 1.0, "request() p99, message listener"),
    Target("deriv_sdk+msg", "mixed", "p50_us", REFERENCE, 0.8, "latency while streaming, p50"),
    Target("deriv_sdk+msg", "mixed", "p99_us", REFERENCE, 0.8, "latency while streaming, p99"),
    Target("deriv_sdk", "threads", "req_per_s", REFERENCE, 1.5, "8 threads x 1,000 requests"),
    Target(
        "deriv_sdk", "idle", "threads_per_conn", "before", 1.0,
        "idle, threads per connection, no worse than before",
    ),
    Target(
        "deriv_sdk", "idle", "rss_kib_per_conn", "before", 1.10,
        "idle, RSS per connection, no worse than before (+10%: it moved 5% between runs)",
    ),
    Target(
        "deriv_sdk", "setup", "median_us", "before", 1.10,
        "constructor to open, no worse than before (ratio to reference, +10% for noise)",
    ),
]  # fmt: skip


def by_rep(runs: list[dict[str, Any]]) -> Values:
    """(scenario, client, metric) -> {repetition: value}, failed measurements left out."""
    values: Values = {}
    for run in runs:
        if "error" in run["result"]:
            continue
        for metric, *_ in METRICS[run["scenario"]]:
            if metric in run["result"]:
                key = (run["scenario"], run["client"], metric)
                values.setdefault(key, {})[run["rep"]] = run["result"][metric]
    return values


def ratios(values: Values, scenario: str, client: str, metric: str, against: str) -> list[float]:
    """client / against for each repetition in which both were measured."""
    mine = values.get((scenario, client, metric), {})
    base = values.get((scenario, against, metric), {})
    return [v / base[r] for r, v in mine.items() if base.get(r)]


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median and min-max per (scenario, client, metric); per-repetition ratios to both
    baselines (``ratio``: the reference, ``alt_ratio``: plain WebSocketApp)."""
    values = by_rep(runs)
    out = []
    for (scenario, client, metric), per_rep in values.items():
        vals = list(per_rep.values())
        row = {"scenario": scenario, "client": client, "metric": metric, "n": len(vals)}
        row.update(median=statistics.median(vals), min=min(vals), max=max(vals))
        for prefix, baseline in (("ratio", REFERENCE), ("alt_ratio", SECOND)):
            found = ratios(values, scenario, client, metric, baseline)
            if found:
                row[prefix] = statistics.median(found)
                row[prefix + "_min"], row[prefix + "_max"] = min(found), max(found)
        out.append(row)
    return out


def _fmt(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.1f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _render(rows: list[list[str]], markdown: bool) -> list[str]:
    """Rows (the first is the header) as a markdown table or as aligned plain text."""
    if markdown:
        out = ["", "| " + " | ".join(rows[0]) + " |", "|---" + "|---:" * (len(rows[0]) - 1) + "|"]
        return [*out, *("| " + " | ".join(r) + " |" for r in rows[1:]), ""]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]


def _title(text: str, markdown: bool) -> str:
    return ("### " if markdown else "== ") + text


def headline(summary: list[dict[str, Any]], meta: dict[str, Any], markdown: bool) -> str:
    """The README table: one row per client, every scenario's headline figure and its ratio."""
    cells = {(r["scenario"], r["client"], r["metric"]): r for r in summary}
    clients = [c for c in meta["clients"] if any(r["client"] == c for r in summary)]
    columns = [
        ("stream", "ticks_per_s", "stream ticks/s"),
        ("stream", "cpu_us_per_msg", "CPU/msg µs"),
        ("rtt", "p50_us", "request p50 µs"),
        ("rtt", "p99_us", "request p99 µs"),
        ("mixed", "p50_us", "while streaming p50 µs"),
        ("mixed", "p99_us", "while streaming p99 µs"),
        ("threads", "req_per_s", "8 threads req/s"),
    ]
    columns = [c for c in columns if any((c[0], n, c[1]) in cells for n in clients)]
    rows = [["client", *(label for *_, label in columns), "stream vs wsapp"]]
    for name in clients:
        row = [f"`{name}`" if markdown else name]
        for scenario, metric, _ in columns:
            cell = cells.get((scenario, name, metric))
            if cell is None:
                row.append("-")
            else:
                ratio = f" ({cell['ratio']:.2f}x)" if "ratio" in cell else ""
                row.append(_fmt(cell["median"]) + ratio)
        stream = cells.get(("stream", name, "ticks_per_s"), {})
        row.append(f"{stream['alt_ratio']:.2f}x" if "alt_ratio" in stream else "-")
        rows.append(row)
    sizes = meta.get("sizes", {})
    text = [
        _title("Summary", markdown),
        "",
        f"Run {meta.get('started', '?')}, {meta.get('machine', '?')}, Python "
        f"{meta.get('python', '?')}, SDK at `{meta.get('git', '?')}`, "
        f"{sizes.get('reps', '?')} repetitions, {meta.get('seconds', '?')} s. Medians over "
        f"repetitions; in brackets the median of the per-repetition ratio to `{REFERENCE}` "
        "(the reference, 1.00x); the last column is the stream ratio to `wsapp` (no wsaccel).",
        "",
        ("```sh\n" + meta.get("command", "") + "\n```") if markdown else meta.get("command", ""),
    ]
    versions = meta.get("versions") or {}
    if versions:
        text += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."]
    text += _render(rows, markdown)
    return "\n".join(text) + "\n"


def tables(summary: list[dict[str, Any]], labels: dict[str, str], markdown: bool) -> str:
    """One table per scenario: median [min-max] and ratio to both baselines for each metric."""
    labels = dict(labels)
    for found in summary:
        labels.setdefault(found["client"], found["client"])
    cells = {(r["scenario"], r["client"], r["metric"]): r for r in summary}
    text = []
    for scenario, metrics in METRICS.items():
        names = [n for n in labels if any((scenario, n, m[0]) in cells for m in metrics)]
        if not names:
            continue
        head = ["client"]
        for _, label, unit, better in metrics:
            head += [f"{label} {unit}".strip() + " median [min-max]", "ratio " + "↓↑"[better]]
            head += ["vs wsapp"]
        rows = [head]
        for name in names:
            row = [f"`{name}`" if markdown else name]
            for metric, *_ in metrics:
                cell = cells.get((scenario, name, metric))
                if cell is None:
                    row += ["-", "-", "-"]
                    continue
                row.append(f"{_fmt(cell['median'])} [{_fmt(cell['min'])}-{_fmt(cell['max'])}]")
                for key in ("ratio", "alt_ratio"):
                    row.append(f"{cell[key]:.2f}x" if key in cell else "-")
            rows.append(row)
        text.append(_title(TITLES[scenario], markdown))
        text += _render(rows, markdown)
        text.append("")
    used = [n for n in labels if any(r["client"] == n for r in summary)]
    text.append("Clients: " + "; ".join(f"`{n}` = {labels[n]}" for n in used) + ".")
    return "\n".join(text) + "\n"


def load_before(path: str) -> Values:
    """The per-repetition values of an earlier run's JSON (for the 'no worse' targets)."""
    with open(path) as file:
        return by_rep(json.load(file)["runs"])


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _feeder_checks(runs: list[dict[str, Any]], values: Values) -> list[str]:
    text = []
    drain = values.get(("stream", "raw-drain", "ticks_per_s"))
    clients = [
        (statistics.median(v.values()), client)
        for (scenario, client, metric), v in values.items()
        if scenario == "stream" and metric == "ticks_per_s" and client not in NO_NETWORK
    ]
    if drain and clients:
        best, name = max(clients)
        times = statistics.median(drain.values()) / best
        verdict = "not the bottleneck" if times >= 3 else "POSSIBLY THE BOTTLENECK"
        text.append(
            f"Feeder, stream: raw-drain {_fmt(statistics.median(drain.values()))} ticks/s, "
            f"{times:.1f}x the fastest client ({name}, {_fmt(best)}): {verdict}."
        )
    paced: dict[str, list[float]] = {}
    for run in runs:
        result = run["result"]
        if run["scenario"] == "mixed" and "error" not in result:
            rate = result["stream_msgs_per_s"] / result["stream_msgs_expected_per_s"]
            paced.setdefault(run["client"], []).append(rate)
    if paced:
        off = {c: statistics.median(v) for c, v in paced.items()}
        bad = {c: v for c, v in off.items() if not 0.85 <= v <= 1.15}
        lowest, highest = min(off.values()), max(off.values())
        verdict = (
            "as paced"
            if not bad
            else "OFF for " + ", ".join(f"{c} ({v:.0%})" for c, v in bad.items())
        )
        text.append(
            f"Feeder, mixed: stream messages received while the requests ran, "
            f"{lowest:.0%}-{highest:.0%} of the paced rate: {verdict}."
        )
    return text


def verdicts(runs: list[dict[str, Any]], markdown: bool, before: Values | None = None) -> str:
    """The feeder checks, and issue 12's targets, each met or not with its margin."""
    values = by_rep(runs)
    text = [_title("Feeder check and targets", markdown), ""]
    if not any(key[1] == REFERENCE for key in values):
        text += [f"NO REFERENCE: {REFERENCE} has no result here; no ratio target judged.", ""]
    for line in _feeder_checks(runs, values):
        text += [line, ""]
    rows = [["target", "bound", "measured median [min-max]", "margin", "met"]]
    ran = {scenario for scenario, _, _ in values}
    for t in TARGETS:
        if t.scenario not in ran:
            continue
        sign = ">=" if t.higher else "<="
        bound = t.bound
        if t.against == "before":
            if before is None:
                rows.append([f"{t.client}: {t.what}", "-", "no before run given", "-", "-"])
                continue
            if t.metric == "median_us":  # setup: a ratio to the reference in both runs
                found = ratios(values, t.scenario, t.client, t.metric, REFERENCE)
                old = _median(ratios(before, t.scenario, t.client, t.metric, REFERENCE))
                unit = "x"
            else:
                found = list(values.get((t.scenario, t.client, t.metric), {}).values())
                old = _median(list(before.get((t.scenario, t.client, t.metric), {}).values()))
                unit = ""
            if old is None:
                rows.append([f"{t.client}: {t.what}", "-", "not in the before run", "-", "-"])
                continue
            bound = t.bound * old
            label = f"{t.client}: {t.what} ({_fmt(old)}{unit})"
        elif t.against is None:
            found = list(values.get((t.scenario, t.client, t.metric), {}).values())
            unit, label = "", f"{t.client}: {t.what}"
        else:
            found = ratios(values, t.scenario, t.client, t.metric, t.against)
            unit, label = "x", f"{t.client}: {t.what}, vs {t.against}"
        if not found:
            rows.append([label, f"{sign} {bound:.3g}{unit}", "not measured", "-", "-"])
            continue
        mid = statistics.median(found)
        shown = f"{mid:.3g}{unit} [{min(found):.3g}-{max(found):.3g}]"
        for name, limit in (("", bound), (" (aim)", t.aim)):
            if limit is None:
                continue
            met = mid >= limit if t.higher else mid <= limit
            margin = (mid / limit - 1) if t.higher else (1 - mid / limit)
            spread = f"{margin:+.1%}" if abs(margin) < 0.1 else f"{margin:+.0%}"
            met_text = "yes" if met else "NO"
            rows.append([label + name, f"{sign} {limit:.3g}{unit}", shown, spread, met_text])
    text += _render(rows, markdown)
    text.append(
        "margin: how far the median is inside the bound (+) or beyond it (-), relative to it."
    )
    return "\n".join(text) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="Re-render the report of a saved run.")
    parser.add_argument("results", help="a JSON written by run.py --out")
    parser.add_argument("--before", help="a results JSON for the 'no worse than before' targets")
    parser.add_argument("--markdown", action="store_true")
    opts = parser.parse_args()
    with open(opts.results) as file:
        data = json.load(file)
    before = load_before(opts.before) if opts.before else None
    print(headline(data["summary"], data["meta"], opts.markdown))
    print(tables(data["summary"], data["meta"]["clients"], opts.markdown))
    print(verdicts(data["runs"], opts.markdown, before))
    for note in data["meta"].get("notes", []):
        print(("- " if opts.markdown else "note: ") + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
