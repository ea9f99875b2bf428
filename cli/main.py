"""`ntr <command>`: the command line. Each command lives in its own module under ntr.cli."""

from __future__ import annotations

import argparse
import sys

from ntr.cli import demo, evaluate, generate, index, preprocess, reasons, serve, simulate, train

# Command name -> module with `add_arguments(parser)`, `run(args, extra) -> int` and HELP.
COMMANDS = {
    "generate": generate,
    "preprocess": preprocess,
    "train": train,
    "evaluate": evaluate,
    "simulate": simulate,
    "reasons": reasons,
    "index": index,
    "serve": serve,
    "demo": demo,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ntr",
        description="Sequential retrieval recommenders that learn from negative feedback.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        command.add_argument("--workdir", default="./ntr-work", help="working directory (DESIGN.md layout)")
        module.add_arguments(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(COMMANDS[args.command], "ACCEPTS_BEAM_ARGS", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return COMMANDS[args.command].run(args, extra)
    except (FileNotFoundError, ValueError) as err:
        print(f"ntr {args.command}: error: {err}", file=sys.stderr)
        return 2


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
