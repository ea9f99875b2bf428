"""`ntr <command>`: the command line. Each command lives in its own module under ntr.cli."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

from ntr.cli import (
    auth,
    beam_args,
    demo,
    evaluate,
    generate,
    index,
    preprocess,
    reasons,
    serve,
    simulate,
    train,
)

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
    "auth": auth,
    "demo": demo,
}


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" only where the help does not already say its default and X is set."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The `ntr` parser and each command's own parser (for errors that show its usage)."""
    parser = argparse.ArgumentParser(
        prog="ntr",
        description="Sequential retrieval recommenders that learn from negative feedback.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('ntr')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = {}
    for name, module in COMMANDS.items():
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            formatter_class=DefaultsFormatter,
        )
        commands[name] = command
        command.add_argument(
            "--workdir", default="./ntr-work", help="working directory (layout: docs/DESIGN.md)"
        )
        command.add_argument(
            "--verbose", action="store_true", help="show TF/Beam start-up messages (see cli/quiet.py)"
        )
        module.add_arguments(command)
    return parser, commands


def check_extra(command: argparse.ArgumentParser, module, extra: list[str]) -> None:
    """Exits with the command's usage when `extra` holds a flag neither it nor Beam knows."""
    if not extra:
        return
    unknown = beam_args.unknown_beam_args(extra) if getattr(module, "ACCEPTS_BEAM_ARGS", False) else extra
    if not unknown:
        return
    flag = next((a for a in unknown if a.startswith("-")), unknown[0])
    near = beam_args.closest_flag(flag, command) if flag.startswith("-") else None
    hint = f" (did you mean {near}?)" if near else ""
    command.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args, extra = parser.parse_known_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as given (local workers rerun it)
    check_extra(commands[args.command], COMMANDS[args.command], extra)
    try:
        return COMMANDS[args.command].run(args, extra)
    except (FileNotFoundError, ValueError) as err:
        print(f"ntr {args.command}: error: {err}", file=sys.stderr)
        return 2
