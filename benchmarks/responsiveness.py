"""Responsiveness on the default world: how much same-creator / same-category content leaves the
top 20 after a dislike, per variant (3 trained seeds each), against the published reference
points; and the closed loop for the model alone and behind the serving filters.

Models are the ones `benchmarks.retrieval_quality` trains (`WORKDIR/models/<variant>-s<seed>`;
trained here if missing). Per model: `run_counterfactual` with 2,000 pairs from the test split,
top 20, 2,000 bootstrap resamples; the table gives the mean over seeds ± SE over seeds, and
the widest 95% bootstrap interval of the three.

    python -m benchmarks.responsiveness [--workdir /tmp/ntr-bench/world] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import functools
import os

from benchmarks.common import (
    ALL_VARIANTS,
    MEASURES,
    cached_counterfactual,
    mean_se,
    model_ranker,
    model_tag,
    prepare,
    train_and_evaluate,
    write_section,
)

# Variants also measured behind the serving Recommender's filters.
FILTERED = ("positives_only", "ntr", "ntr_history")
PAPER = {"neg_features_only": "-22.8% / -22.7%", "ntr": "-64.1% / -60.8%", "positives_only": "~0 / ~0"}


def fmt(values: list[float]) -> str:
    mean, se = mean_se(values)
    return f"{100 * mean:+.1f}% ± {100 * se:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/ntr-bench/world", help="default-world workdir")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds")
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS), help="comma-separated variants")
    parser.add_argument("--pairs", type=int, default=2000, help="counterfactual pairs per model")
    parser.add_argument("--users", type=int, default=300, help="closed-loop users")
    parser.add_argument("--steps", type=int, default=30, help="closed-loop steps")
    parser.add_argument("--set", action="append", default=[], help="training config override (side runs)")
    parser.add_argument(
        "--tag", default="", help="model folder suffix for runs with --set (required with it)"
    )
    parser.add_argument("--section", default="responsiveness", help="BENCHMARKS.md section to write")
    parser.add_argument(
        "--closed-loop", action=argparse.BooleanOptionalAction, default=True, help="also run the closed loop"
    )
    args = parser.parse_args()
    from ntr.retrieval.data import read_histories  # noqa: PLC0415
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415
    from ntr.simulation import closed_loop as loop  # noqa: PLC0415
    from ntr.simulation.rankers import ModelRanker, RecommenderRanker  # noqa: PLC0415

    if args.set and not args.tag:
        parser.error("--set needs --tag, so that the side-run models do not replace the default ones")
    prepare("world", args.workdir, "")
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    histories = read_histories(os.path.join(args.workdir, "data"), "test")
    results: dict[str, list[dict]] = {}
    # The model alone for every variant; behind the serving filters for two of them (the filters
    # act on the event's reason, whatever the model).
    arms = [(v, f"`{v}`", False) for v in variants]
    arms += [(v, f"`{v}` + serving filters", True) for v in FILTERED if v in variants]
    for variant, name, filters in arms:
        for seed in seeds:
            train_and_evaluate(args.workdir, variant, seed, args.set, args.tag)
            tag = model_tag(variant, seed, args.tag)
            cache_name = f"{tag}{'-filters' if filters else ''}"
            make_ranker = functools.partial(model_ranker, args.workdir, tag, filters)
            results.setdefault(name, []).append(
                cached_counterfactual(args.workdir, cache_name, histories, args.pairs, make_ranker)
            )
            print(name, seed, "done", flush=True)

    lines = [
        f"Default world; {args.pairs:,} (history, k) pairs per model from the test split, top 20; the model alone, "
        "or behind the serving Recommender's filters (which also drop consumed items, so X itself is never shown "
        "and its share is n/a). Mean over seeds ± SE over seeds; in brackets the widest 95% bootstrap interval "
        "of the seeds. Branch A watches item X to the end; B also dislikes X with the reason (or skips it).\n",
        "| variant | creator dislike: same-creator share | topic dislike: same-category share | quality dislike: "
        "same item | skip: same item | collateral after a creator dislike (other share) | seed paper creator / "
        "content |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, runs in results.items():
        cells = []
        for reason, share in MEASURES:
            entries = [r["reasons"][reason][share] for r in runs if reason in r["reasons"]]
            values = [e["value"] for e in entries if e["value"] is not None]
            cis = [e["ci95"] for e in entries if e["ci95"]]
            lo = min(c[0] for c in cis) if cis else float("nan")
            hi = max(c[1] for c in cis) if cis else float("nan")
            cells.append(f"{fmt(values)} [{100 * lo:+.1f}%, {100 * hi:+.1f}%]" if values else "n/a")
        other = [r["reasons"]["creator"]["other"]["value"] for r in runs]
        cells.append(fmt(other))
        paper = PAPER.get(variant.strip("`"), "-")  # filter rows have no published counterpart
        lines.append(f"| {variant} | " + " | ".join(cells) + f" | {paper} |")

    overrides = ", ".join(f"`{x}`" for x in args.set) or "none"
    lines[0] = f"Training overrides: {overrides}. " + lines[0]
    if not args.closed_loop:
        write_section(args.section, "Counterfactual responsiveness (default world)", "\n".join(lines))
        print("\n".join(lines))
        return
    # Closed loop: seed-0 models alone and behind the serving filters, same users and draws.
    raw = os.path.join(args.workdir, "raw")
    loop_config = loop.ClosedLoopConfig(num_users=args.users, steps=args.steps)
    world = loop.World.from_raw(raw)
    begin = loop.logged_histories(raw, loop.sample_users(world, loop_config))
    lines += [
        "",
        f"Closed loop: {args.users} world users, {args.steps} steps, slate 10, users watch the first item; "
        "seed-0 models; mean ± SE over users.\n",
        "| arm | dislike rate | skip rate | watch s/step | repeated creator dislikes | disliked creator never "
        "shown again | disliked category never shown again |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in variants:
        model = ExportedModel(os.path.join(args.workdir, "models", model_tag(variant, seeds[0], args.tag)))
        arms = {f"`{variant}`": ModelRanker(model, exclude_consumed=True)}
        if variant in FILTERED:
            arms[f"`{variant}` + serving filters"] = RecommenderRanker.with_filters(model)
        for arm, ranker in arms.items():
            s = loop.story(world, ranker, begin, loop_config)
            lines.append(
                f"| {arm} | {s['dislike_rate']['mean']:.4f} ± {s['dislike_rate']['se']:.4f} "
                f"| {s['skip_rate']['mean']:.3f} ± {s['skip_rate']['se']:.3f} "
                f"| {s['watch_seconds']['mean']:.1f} ± {s['watch_seconds']['se']:.1f} "
                f"| {100 * (s['repeated_creator_dislike_rate'] or 0):.1f}% "
                f"| {100 * s['creator_shown_again']['share_never_shown_again']:.1f}% "
                f"| {100 * s['category_shown_again']['share_never_shown_again']:.1f}% |"
            )
            print(lines[-1], flush=True)
    # --section names side runs too (it used to be ignored here, so a side run with the closed
    # loop replaced the main section).
    write_section(
        args.section, "Counterfactual responsiveness and closed loop (default world)", "\n".join(lines)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
