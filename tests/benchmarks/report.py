"""Statistics and tables for run.py: medians, min-max, per-repetition ratios, targets."""

from __future__ import annotations

import statistics
from typing import Any

BASELINE = "wsapp"
ALT_BASELINE = "wsapp-wsaccel"  # PERFORMANCE.md's 1.0x had wsaccel; a plain install has not

# scenario -> (metric, label, unit, higher_is_better); the first metric is the headline.
METRICS: dict[str, list[tuple[str, str, str, bool]]] = {
    "stream": [("ticks_per_s", "ticks/s", "", True), ("cpu_us_per_msg", "CPU/msg", "µs", False)],
    "rtt": [
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
    "threads": "3. Threads x requests on one connection",
    "idle": "4. Idle connections in one process",
    "setup": "5. Constructor to open",
}


Values = dict[tuple[str, str, str], dict[int, float]]

# (client, scenario, metric, against, bound, what): issue 7's targets. `against` None: absolute.
TARGETS: list[tuple[str, str, str, str | None, float, str]] = [
    ("deriv_sdk", "stream", "ticks_per_s", BASELINE, 2.0, "stream, default install"),
    ("deriv_sdk-orjson", "stream", "ticks_per_s", BASELINE, 3.0, "stream, speed extra"),
    ("deriv_sdk", "rtt", "p50_us", BASELINE, 0.8, "request() p50"),
    ("deriv_sdk", "rtt", "p50_us", "deriv-api", 0.5, "request() p50"),
    ("deriv_sdk", "threads", "req_per_s", BASELINE, 1.3, "8 threads, req/s"),
    ("deriv_sdk", "idle", "threads_per_conn", None, 3, "idle, threads per connection"),
    ("deriv_sdk", "idle", "rss_kib_per_conn", None, 64, "idle, RSS KiB per connection"),
    ("deriv_sdk", "setup", "median_us", BASELINE, 1.2, "constructor to open"),
]
NO_NETWORK = ("json-only", "orjson-only", "raw-drain")


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
    """Median and min-max per (scenario, client, metric); per-repetition ratios to the baseline."""
    values = by_rep(runs)
    out = []
    for (scenario, client, metric), per_rep in values.items():
        vals = list(per_rep.values())
        row = {"scenario": scenario, "client": client, "metric": metric, "n": len(vals)}
        row.update(median=statistics.median(vals), min=min(vals), max=max(vals))
        for prefix, baseline in (("ratio", BASELINE), ("alt_ratio", ALT_BASELINE)):
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


def tables(summary: list[dict[str, Any]], labels: dict[str, str], markdown: bool) -> str:
    """One table per scenario: median [min-max] and ratio to the baseline for each metric."""
    for row in summary:
        labels.setdefault(row["client"], row["client"])
    cells = {(r["scenario"], r["client"], r["metric"]): r for r in summary}
    text = []
    for scenario, metrics in METRICS.items():
        names = [n for n in labels if any((scenario, n, m[0]) in cells for m in metrics)]
        if not names:
            continue
        alt = any("alt_ratio" in r for r in summary if r["scenario"] == scenario)
        head = ["client"]
        for _, label, unit, better in metrics:
            head += [f"{label} {unit}".strip() + " median [min-max]", "ratio " + "↓↑"[better]]
            head += ["vs wsaccel"] if alt else []
        rows = [head]
        for name in names:
            row = [f"`{name}`" if markdown else name]
            for metric, *_ in metrics:
                cell = cells.get((scenario, name, metric))
                if cell is None:
                    row += ["-", "-"] + ["-"] * alt
                    continue
                row.append(f"{_fmt(cell['median'])} [{_fmt(cell['min'])}-{_fmt(cell['max'])}]")
                for key in ("ratio", "alt_ratio")[: 1 + alt]:
                    row.append(f"{cell[key]:.2f}x" if key in cell else "-")
            rows.append(row)
        text.append(("### " if markdown else "== ") + TITLES[scenario])
        text += _render(rows, markdown)
        text.append("")
    used = [n for n in labels if any(r["client"] == n for r in summary)]
    text.append("Clients: " + "; ".join(f"{n} = {labels[n]}" for n in used) + ".")
    return "\n".join(text)


def _render(rows: list[list[str]], markdown: bool) -> list[str]:
    """Rows (the first is the header) as a markdown table or as aligned plain text."""
    if markdown:
        out = ["", "| " + " | ".join(rows[0]) + " |", "|---" + "|---:" * (len(rows[0]) - 1) + "|"]
        return out + ["| " + " | ".join(r) + " |" for r in rows[1:]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]


def verdicts(runs: list[dict[str, Any]], markdown: bool) -> str:
    """Whether the feeder kept ahead of every client, and issue 7's targets, met or not."""
    values = by_rep(runs)
    text = [("### " if markdown else "== ") + "Feeder check and targets"]
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
        text += [
            "",
            f"Feeder: raw-drain {_fmt(statistics.median(drain.values()))} ticks/s, "
            f"{times:.1f}x the fastest client ({name}, {_fmt(best)}): {verdict}.",
        ]
        text += [] if markdown else [""]
    rows = [["target", "bound", "measured median [min-max]", "vs wsaccel", "met"]]
    for client, scenario, metric, against, bound, what in TARGETS:
        higher = metric in ("ticks_per_s", "req_per_s")
        sign = ">=" if higher else "<="
        if against is None:
            found = list(values.get((scenario, client, metric), {}).values())
            alt: list[float] = []
            unit = ""
        else:
            found = ratios(values, scenario, client, metric, against)
            alt = ratios(values, scenario, client, metric, ALT_BASELINE) * (against == BASELINE)
            unit = "x"
        if not found:
            continue
        mid = statistics.median(found)
        met = mid >= bound if higher else mid <= bound
        shown = f"{mid:.3g}{unit} [{min(found):.3g}-{max(found):.3g}]"
        label = f"{client}: {what}" + (f" vs {against}" if against else "")
        alt_text = f"{statistics.median(alt):.2f}x" if alt else "-"
        rows.append([label, f"{sign} {bound:g}{unit}", shown, alt_text, "yes" if met else "NO"])
    if len(rows) > 1:
        text += _render(rows, markdown)
    return "\n".join(text) + "\n"
