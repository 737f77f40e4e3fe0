"""``python -m deriv_sdk.testing``: run a :class:`~deriv_sdk.testing.LocalServer` in the
foreground (the same command as ``deriv-sdk serve``: see :mod:`deriv_sdk.testing.command`).
"""

from __future__ import annotations

import argparse
import sys

from deriv_sdk.testing import command


def _echo(line: str) -> None:
    # The one print() of the command: the entry point owns stdout (tests/test_layers.py).
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m deriv_sdk.testing",
        description="Run a local Deriv server (v3 and the new API) in the foreground.",
    )
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv), echo=_echo)


if __name__ == "__main__":
    sys.exit(main())
