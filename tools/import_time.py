"""Import times of deriv_sdk and deriv_sdk.api, in fresh interpreters (medians).

    python tools/import_time.py                      # this tree
    python tools/import_time.py --before /tmp/base   # and another checkout, in the same run

Each statement runs ``--runs`` times (default 25) in a new ``python -c``, the trees taking
turns, after one warm-up run each (so that the ``.pyc`` files exist, also where
``PYTHONDONTWRITEBYTECODE`` is set); reported are the
whole process's wall time and the statement's own time measured inside the process (less
noisy: it leaves out the interpreter's start). Run it from outside the
trees (the current folder would shadow ``PYTHONPATH``), e.g. ``cd /tmp``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
STATEMENTS = (
    "import deriv_sdk",
    "import deriv_sdk.api",
    "from deriv_sdk.api import LegacyAPI",
    "from deriv_sdk.api import OptionsAPI",
    "import deriv_sdk.api.v3_types",
    "import deriv_sdk.api.options_types",
)


def run(tree: Path, statement: str) -> tuple[float, float]:
    """(the whole process, the statement alone as timed inside it), in ms."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    # As a user has it: compiled once (pip writes the .pyc files), not compiled on every run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    code = f"import time\nt = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return (time.perf_counter() - start) * 1000, float(done.stdout) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="another checkout to compare with")
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args()
    cases = [("after" if args.before else "this", HERE, s) for s in STATEMENTS]
    if args.before:
        cases.insert(0, ("before", args.before, "import deriv_sdk"))
    cases.append(("python", HERE, "pass"))
    for _, tree, statement in cases:
        run(tree, statement)
    times: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(cases))}
    for _ in range(args.runs):
        for index, (_, tree, statement) in enumerate(cases):
            times[index].append(run(tree, statement))
    print(f"{'':45s} {'process':>16s} {'the import alone':>26s}   (medians of {args.runs})")
    for index, (label, _, statement) in enumerate(cases):
        process = [p for p, _ in times[index]]
        alone = [a for _, a in times[index]]
        print(
            f"{label:6s} {statement:38s} {statistics.median(process):9.1f} ms      "
            f"{statistics.median(alone):7.1f} ms (min {min(alone):5.1f}, max {max(alone):5.1f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
