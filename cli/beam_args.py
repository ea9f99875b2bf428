"""Which pass-through flags Beam really knows, so a typo is an error and not a silent default.

`ntr preprocess` hands flags it does not define to Beam (`--runner=FlinkRunner`,
`--direct_num_workers=2`). Beam itself only logs "Discarding unparseable args" for a flag no
options class defines, and the run goes on with the default: `--skipms 1000` (for `--skip-ms`)
would be lost. Here the same parse Beam does decides first.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib


def _beam_parser() -> argparse.ArgumentParser:
    # The parser and the option classes Beam's own `PipelineOptions.get_all_options` builds and
    # parses with: a flag it leaves unknown is one Beam discards.
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser  # noqa: PLC0415

    import ntr.pipelines.dask_runner  # noqa: F401, PLC0415 (registers Beam's --dask_* options)

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


def add_engine_argument(parser: argparse.ArgumentParser) -> None:
    """`--dask-workers`, for commands that run a Beam pipeline."""
    parser.add_argument(
        "--dask-workers",
        type=int,
        default=0,
        help="run the Beam pipeline on a local dask.distributed cluster of N worker processes "
        "(0: the --runner given, DirectRunner by default; for a running cluster pass "
        "--runner=DaskRunner --dask_client_address=HOST:PORT)",
    )


@contextlib.contextmanager
def engine_args(dask_workers: int, extra: list[str]):
    """The Beam flags to run with: `extra`, with `--runner=DaskRunner` meaning ntr's Dask runner,
    plus a local cluster's flags when `dask_workers` > 0 (the cluster lives for the block)."""
    from ntr.pipelines.dask_runner import RUNNER, local_cluster  # noqa: PLC0415

    flags = [f"--runner={RUNNER}" if a in ("--runner=DaskRunner", "--runner=dask") else a for a in extra]
    if dask_workers < 0:
        raise ValueError(
            f"--dask-workers {dask_workers}: give 0 (no cluster) or a number of worker processes."
        )
    if not dask_workers:
        yield flags
        return
    if any(a.startswith(("--runner", "--dask_client_address")) for a in flags):
        raise ValueError(
            "--dask-workers starts its own cluster: drop --runner / --dask_client_address, or drop "
            "--dask-workers to run on the cluster they name."
        )
    with local_cluster(dask_workers) as cluster_flags:
        yield flags + cluster_flags
