"""Which pass-through flags Beam really knows, so a typo is an error and not a silent default.

`ntr preprocess` hands flags it does not define to Beam (`--runner=FlinkRunner`,
`--direct_num_workers=2`). Beam itself only logs "Discarding unparseable args" for a flag no
options class defines, and the run goes on with the default: `--skipms 1000` (for `--skip-ms`)
would be lost. Here the same parse Beam does decides first.
"""

from __future__ import annotations

import argparse
import difflib


def _beam_parser() -> argparse.ArgumentParser:
    # The parser and the option classes Beam's own `PipelineOptions.get_all_options` builds and
    # parses with: a flag it leaves unknown is one Beam discards.
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser  # noqa: PLC0415

    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)  # noqa: SLF001
    return parser


def unknown_beam_args(extra: list[str]) -> list[str]:
    """The part of `extra` (flags with their values) that no Beam options class parses."""
    _, unknown = _beam_parser().parse_known_args(extra)
    return unknown


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings]  # noqa: SLF001


def closest_flag(flag: str, own: argparse.ArgumentParser) -> str | None:
    """The flag of `own` or of Beam nearest to `flag` (`--skipms` -> `--skip-ms`), if any is close."""
    name = flag.split("=", 1)[0]
    candidates = option_strings(own) + option_strings(_beam_parser())
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.7)
    return match[0] if match else None
