"""``python -m deriv_sdk``: the ``deriv-sdk`` command line (see :mod:`deriv_sdk.cli`)."""

from __future__ import annotations

import sys

from deriv_sdk.cli import main

if __name__ == "__main__":
    sys.exit(main())
