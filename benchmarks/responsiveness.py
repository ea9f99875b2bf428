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
import json
import os

import numpy as np

from benchmarks.common import (
    ALL_VARIANTS,
    MEASURES,
    cached_counterfactual,
    loop_start,
    mean_se,
    model_ranker,
    model_tag,
    prepare,
    train_and_evaluate,
    write_section,
)

# Variants also measured behind the serving Recommender's filters.
FILTERED = ("positives_only", "ntr", "ntr_history", "ntr_fitted")
PAPER = {"neg_features_only": "-22.8% / -22.7%", "ntr": "-64.1% / -60.8%", "positives_only": "~0 / ~0"}


def fmt(values: list[float]) -> str:
    mean, se = mean_se(values)
    return f"{100 * mean:+.1f}% ± {100 * se:.1f}"


def cached_story(args, variant: str, seed: int, filters: bool) -> dict:
    """One closed-loop run of a seed's model (alone or behind the filters), cached in reports/."""
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415
    from ntr.simulation import closed_loop as loop  # noqa: PLC0415
    from ntr.simulation.rankers import ModelRanker, RecommenderRanker  # noqa: PLC0415

    tag = model_tag(variant, seed, args.tag)
    name = f"closed-loop-{tag}{'-filters' if filters else ''}-u{args.users}-t{args.steps}.json"
    path = os.path.join(args.workdir, "reports", name)
    if not os.path.exists(path):
        config, world, begin = loop_start(args.workdir, args.users, args.steps)
        model = ExportedModel(os.path.join(args.workdir, "models", tag))
        ranker = (
            RecommenderRanker.with_filters(model) if filters else ModelRanker(model, exclude_consumed=True)
        )
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(loop.story(world, ranker, begin, config), handle)
        print("closed loop", tag, "filters" if filters else "alone", "done", flush=True)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def paired_change(arm: dict, base: dict, metric: str) -> float:
    """Relative change of an arm's metric against the reference run on the same users and draws."""
    a, b = np.asarray(arm["per_user"][metric]), np.asarray(base["per_user"][metric])
    return float((a - b).mean() / b.mean())


def closed_loop_lines(args, variants: list[str], seeds: list[int]) -> list[str]:
    """The closed-loop tables: every seed's model, the same users and draws for every arm.

    Each arm is compared with `positives_only` under the same serving (alone or behind the
    filters), user by user on the same seed's loop; the change is the mean over seeds ± SE over
    seeds, so it carries both the model's and the users' noise.
    """
    arms = [(v, False) for v in variants] + [(v, True) for v in FILTERED if v in variants]
    runs = {(v, f): [cached_story(args, v, s, f) for s in seeds] for v, f in arms}
    metrics = (("dislike_rate", "{:.4f}"), ("skip_rate", "{:.3f}"), ("watch_seconds", "{:.1f}"))
    lines = [
        "",
        f"Closed loop: {args.users} world users, {args.steps} steps, slate 10, users watch the first item; "
        f"the models of seeds {args.seeds}, each on the same users and draws; mean over seeds ± SE over seeds. "
        "Change: against `positives_only` served the same way (alone / behind the filters), user by user.\n",
        "| arm | dislike rate | skip rate | watch s/step | repeated creator dislikes | disliked creator never "
        "shown again | disliked category never shown again | dislike rate change | skip rate change | "
        "watch change | repeated creator dislikes change |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, filters in arms:
        stories = runs[(variant, filters)]
        cells = []
        for metric, form in metrics:
            mean, se = mean_se([s[metric]["mean"] for s in stories])
            cells.append(f"{form.format(mean)} ± {form.format(se)}")
        repeated = [s["repeated_creator_dislike_rate"] or 0.0 for s in stories]
        cells.append(f"{100 * mean_se(repeated)[0]:.1f}% ± {100 * mean_se(repeated)[1]:.1f}")
        for key in ("creator_shown_again", "category_shown_again"):
            mean, se = mean_se([s[key]["share_never_shown_again"] or 0.0 for s in stories])
            cells.append(f"{100 * mean:.1f}% ± {100 * se:.1f}")
        base = runs.get(("positives_only", filters))
        if base is None or variant == "positives_only":
            cells += ["-"] * 4
        else:
            for metric, _ in metrics:
                cells.append(fmt([paired_change(a, b, metric) for a, b in zip(stories, base, strict=True)]))
            base_repeated = [s["repeated_creator_dislike_rate"] or 0.0 for s in base]
            cells.append(
                fmt([a / b - 1 if b else float("nan") for a, b in zip(repeated, base_repeated, strict=True)])
            )
        name = f"`{variant}`" + (" + serving filters" if filters else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/ntr-bench/world", help="default-world workdir")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds")
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS), help="comma-separated variants")
    parser.add_argument("--pairs", type=int, default=2000, help="counterfactual pairs per model")
    parser.add_argument("--users", type=int, default=1000, help="closed-loop users")
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
    lines += closed_loop_lines(args, variants, seeds)
    # --section names side runs too (it used to be ignored here, so a side run with the closed
    # loop replaced the main section).
    write_section(
        args.section, "Counterfactual responsiveness and closed loop (default world)", "\n".join(lines)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
