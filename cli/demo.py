"""`ntr demo`: the whole chain on the built-in synthetic world."""

from __future__ import annotations

import argparse
import json
import os
import time

from ntr.cli import generate, preprocess
from ntr.retrieval.config import VARIANTS

HELP = (
    "Generate the default synthetic world, preprocess it, train and evaluate the positives_only, "
    "ntr and ntr_fitted variants, print their metrics side by side, then simulate dislikes (counterfactual "
    "and closed loop) and write the HTML report."
)
ACCEPTS_BEAM_ARGS = True
HEADLINE = ("ndcg@10", "recall@10", "neghit@10", "delta_hr@10", "auc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    generate.add_arguments(parser)
    parser.add_argument("--max-len", type=int, default=50, help="events per sequence window")
    parser.add_argument(
        "--variants",
        default="positives_only,ntr,ntr_fitted",
        help="comma-separated variants to train and compare",
    )
    parser.add_argument("--epochs", type=int, help="cap training epochs (default: the config's)")
    parser.add_argument("--pairs", type=int, default=2000, help="counterfactual pairs per variant")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ntr.cli.main import main  # noqa: PLC0415 (main imports this module)

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}.")
    steps = 3 + 2 * len(variants)
    started = time.perf_counter()
    raw_dir = os.path.join(args.workdir, "raw")
    print(f"[1/{steps}] ntr generate --scale {args.scale} --seed {args.seed}")
    _, summary = generate.generate_world(generate.config_from_args(args), raw_dir)
    generate.print_world_summary(summary, raw_dir)
    print(f"[2/{steps}] ntr preprocess")
    pre_args = preprocess.build_defaults(args.workdir, max_len=args.max_len)
    config = preprocess.config_from_args(pre_args)
    stats = preprocess.run_preprocess(config, extra)
    preprocess.print_stats(stats)
    preprocess.report_outputs(stats, config)
    step = 2
    for variant in variants:
        common = ["--workdir", args.workdir, "--variant", variant]
        train_args = ["train", *common, "--fresh", "--set", f"model.max_len={max(args.max_len, 2)}"]
        if args.epochs:
            train_args += ["--epochs", str(args.epochs)]
        step += 1
        print(f"[{step}/{steps}] ntr train --variant {variant}")
        if main(train_args) != 0:
            return 1
        step += 1
        print(f"[{step}/{steps}] ntr evaluate --variant {variant}")
        if main(["evaluate", *common]) != 0:
            return 1
    print(f"\n{compare(args.workdir, variants)}\n")
    print(f"[{steps}/{steps}] ntr simulate --variants {','.join(variants)}")
    simulate_args = ["simulate", "--workdir", args.workdir, "--variants", ",".join(variants)]
    if main([*simulate_args, "--pairs", str(args.pairs), "--seed", str(args.seed)]) != 0:
        return 1
    elapsed = time.perf_counter() - started
    print(f"\ndone in {elapsed:.0f}s: raw logs in {raw_dir}/, data in {config.output_dir}/,")
    print(f"models in {args.workdir}/models/, reports in {args.workdir}/reports/")
    print(f"open {os.path.abspath(os.path.join(args.workdir, 'reports', 'simulation.html'))} in a browser")
    return 0


# metric -> (higher is better, what the row means)
MEANING = {
    "ndcg@10": (True, "rank of what the user watched next"),
    "recall@10": (True, "next positives found in the top 10"),
    "neghit@10": (False, "next explicit dislikes recommended in the top 10"),
    "delta_hr@10": (True, "recall@10 - neghit@10"),
    "auc": (True, "p(positive) above p(dislike), random pairs"),
}


def compare(workdir: str, variants: list[str]) -> str:
    """A test-split table (one row per headline metric, one column per variant, mean ± se,
    which way is better and what the row means) and each variant's verdict against the first."""
    reports = {}
    for variant in variants:
        with open(os.path.join(workdir, "reports", f"evaluation-{variant}.json"), encoding="utf-8") as handle:
            reports[variant] = json.load(handle)["metrics"]
    lines = [f"{'test split':<16}" + "".join(f"{v:>22}" for v in variants) + "   meaning"]
    for name in HEADLINE:
        cells = []
        for variant in variants:
            value = reports[variant].get(name, {})
            if value.get("mean") is None:
                cells.append(f"{'n/a':>22}")
            else:
                se = value["se"] or 0.0
                cells.append(f"{value['mean']:>14.4f} ± {se:.4f}")
        higher, meaning = MEANING[name]
        arrow = "higher better" if higher else "lower better"
        lines.append(f"{name:<16}" + "".join(cells) + f"   {arrow}: {meaning}")
    reference = variants[0]
    for variant in variants[1:]:
        parts = [
            verdict(name, reports[reference].get(name, {}), reports[variant].get(name, {}))
            for name in HEADLINE
        ]
        lines.append(f"{variant} against {reference}: " + "; ".join(parts))
    return "\n".join(lines)


def verdict(name: str, base: dict, other: dict) -> str:
    """`ndcg@10 -3.5% (worse)`: relative change and whether it beats 2 standard errors."""
    if base.get("mean") is None or other.get("mean") is None:
        return f"{name} n/a"
    diff = other["mean"] - base["mean"]
    noise = 2 * ((base["se"] or 0.0) ** 2 + (other["se"] or 0.0) ** 2) ** 0.5
    change = f"{100 * diff / abs(base['mean']):+.1f}%" if base["mean"] else f"{diff:+.4f}"
    if abs(diff) <= noise:
        return f"{name} {change} (within noise)"
    better = (diff > 0) == MEANING[name][0]
    return f"{name} {change} ({'better' if better else 'worse'})"
