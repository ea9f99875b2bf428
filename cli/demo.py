"""`ntr demo`: the whole chain on the built-in synthetic world."""

from __future__ import annotations

import argparse
import os

from ntr.cli import generate, preprocess

HELP = "Generate the default synthetic world and preprocess it; prints where outputs are."
ACCEPTS_BEAM_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    generate.add_arguments(parser)
    parser.add_argument("--max-len", type=int, default=50, help="events per sequence window")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    raw_dir = os.path.join(args.workdir, "raw")
    print(f"[1/2] ntr generate --scale {args.scale} --seed {args.seed}")
    _, summary = generate.generate_world(generate.config_from_args(args), raw_dir)
    generate.print_world_summary(summary, raw_dir)
    print("[2/2] ntr preprocess")
    pre_args = preprocess.build_defaults(args.workdir, max_len=args.max_len)
    config = preprocess.config_from_args(pre_args)
    stats = preprocess.run_preprocess(config, extra)
    preprocess.print_stats(stats, config.output_dir)
    print(f"\ndone: raw logs in {raw_dir}/, training data in {config.output_dir}/")
    return 0
