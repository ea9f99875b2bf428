"""`python -m ntr.cli ...`: the `ntr` command line, for starting it from Python (workers)."""

from ntr.cli.entry import run

run()
