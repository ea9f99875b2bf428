"""`ntr simulate`: counterfactual responsiveness and the closed loop -> WORKDIR/reports/simulation.*"""

from __future__ import annotations

import argparse
import os
import time

from ntr.retrieval.config import VARIANTS

HELP = (
    "Measure how much similar content leaves the top K after a dislike (per reason, with bootstrap "
    "intervals) and run world users against each variant in a closed loop; writes "
    "reports/simulation.json and simulation.html."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--variants",
        default="positives_only,ntr",
        help=f"comma-separated trained variants ({', '.join(VARIANTS)})",
    )
    parser.add_argument(
        "--pairs", type=int, default=2000, help="counterfactual (history, k) pairs per variant"
    )
    parser.add_argument("--k", type=int, default=20, help="top K compared between branches")
    parser.add_argument(
        "--split", default="test", choices=("train", "valid", "test"), help="trajectories to cut pairs from"
    )
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the CIs")
    parser.add_argument("--users", type=int, default=300, help="closed loop: world users")
    parser.add_argument("--steps", type=int, default=30, help="closed loop: steps per user")
    parser.add_argument("--choice", default="top", choices=("top", "logit"), help="closed loop: choice model")
    parser.add_argument(
        "--closed-loop",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the closed loop (needs raw/world.json)",
    )
    parser.add_argument(
        "--filters-arm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="closed loop: also run each variant behind the serving Recommender's dislike filters",
    )
    parser.add_argument("--seed", type=int, default=0, help="pairs, users and every draw")
    parser.add_argument("--output", help="report folder (default WORKDIR/reports)")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ntr.cli.progress import Progress  # noqa: PLC0415 (TF starts below)
    from ntr.retrieval.data import read_histories  # noqa: PLC0415
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415
    from ntr.simulation import closed_loop as loop  # noqa: PLC0415
    from ntr.simulation.counterfactual import CounterfactualConfig, run_counterfactual  # noqa: PLC0415
    from ntr.simulation.rankers import ModelRanker, RecommenderRanker  # noqa: PLC0415
    from ntr.simulation.report import headline, write_report  # noqa: PLC0415

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValueError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}.")
    start = time.perf_counter()
    models = {v: ExportedModel(os.path.join(args.workdir, "models", v)) for v in variants}
    histories = read_histories(os.path.join(args.workdir, "data"), args.split)
    cf_config = CounterfactualConfig(num_pairs=args.pairs, k=args.k, bootstrap=args.bootstrap, seed=args.seed)
    results = {"variants": variants, "counterfactual": {}, "closed_loop": {}}
    for variant, model in models.items():
        result = run_counterfactual(
            ModelRanker(model), histories, cf_config, progress=Progress(f"counterfactual {variant}")
        )
        results["counterfactual"][variant] = result
    raw = os.path.join(args.workdir, "raw")
    if args.closed_loop and os.path.exists(os.path.join(raw, "world.json")):
        config = loop.ClosedLoopConfig(
            num_users=args.users, steps=args.steps, choice=args.choice, seed=args.seed
        )
        world = loop.World.from_raw(raw)
        begin = loop.logged_histories(raw, loop.sample_users(world, config))
        results["closed_loop_config"] = {**config.__dict__}
        for variant, model in models.items():
            arms = {variant: ModelRanker(model, exclude_consumed=True)}
            if args.filters_arm:
                arms[f"{variant}+filters"] = RecommenderRanker.with_filters(model)
            for arm, ranker in arms.items():
                results["closed_loop"][arm] = loop.story(
                    world, ranker, begin, config, Progress(f"closed loop {arm}")
                )
    elif args.closed_loop:
        print(f"ntr simulate: no {raw}/world.json (not a synthetic world), so no closed loop.")
    results["summary"] = (
        f"Variants {', '.join(variants)} from {os.path.abspath(args.workdir)}; "
        f"{time.perf_counter() - start:.0f} s to simulate."
    )
    paths = write_report(results, args.output or os.path.join(args.workdir, "reports"))
    for line in headline(results):
        print(line)
    print(f"report: {os.path.abspath(paths['html'])}")
    return 0
