"""The `ntr` console script: start the noise filter, then import and run the command line.

A module of its own because importing the commands imports Beam, which logs its noise at
import time: the filter has to be on fd 2 before that.
"""

from __future__ import annotations

import sys


def run() -> None:
    """Console-script entry point (`ntr ...`); `--verbose` anywhere keeps the start-up noise."""
    if "--verbose" not in sys.argv[1:]:
        from ntr.cli.quiet import StderrFilter  # noqa: PLC0415

        StderrFilter().start()
    from ntr.cli.main import main  # noqa: PLC0415

    sys.exit(main())
