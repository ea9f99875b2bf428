"""Online reasons in the closed loop: a world where users state a reason for only some dislikes,
served with item-only, stated, stated + predicted, and oracle reasons.

Per seed: the world (`ntr generate --reason-given-share S`, default 0.3; the same world for
every seed), `ntr preprocess`, the retriever (`ntr train --variant V --seed s`), the reason
model (`ntr reasons train --seed s`, which also chooses the group-removal threshold on
validation users), then the closed loop (1,000 users x 30 steps, the serving Recommender with
its filters) in the four arms of `simulation.reason_arms`. Reported: dislike rate, skip rate,
watch time, repeated same-creator dislikes, "disliked creator never shown again", and what the
predictions removed: right / wrong group removals per 1,000 predictions, and wrong removals of
a creator the user follows or a category among the user's 3 favourite (the collateral). The
share of the stated-to-oracle gap the predictions recover is (stated - predicted) /
(stated - oracle), per measure.

    python -m benchmarks.online_reasons [--root /tmp/ntr-bench] [--seeds 0,1,2] [--variant ntr_history]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from benchmarks.common import NTR, loop_start, mean_se, model_tag, run, train_and_evaluate, write_section

ARM_NAMES = {
    "item_only": "item only (no reasons)",
    "stated": "stated reasons",
    "predicted": "stated + predicted",
    # What the threshold guards against: every prediction acted on, however unsure.
    "predicted_all": "stated + predicted, no threshold",
    "oracle": "oracle (every true reason)",
}


def liked_fn(world, users: np.ndarray):
    """(key, event) -> (creator followed?, primary category among the user's 3 favourite?)."""
    cat = world.catalogue
    index = {str(item): i for i, item in enumerate(cat.item_ids)}
    top3 = np.argsort(-world.users.cat_affinity[users], axis=1)[:, :3]

    def liked(key: int, event: dict) -> tuple[bool, bool]:
        item = index[event["item_id"]]
        creator = cat.creator[item] in world.users.fav_creators[users[key]]
        return bool(creator), bool(cat.categories[item, 0] in top3[key])

    return liked


def loop_arm(workdir: str, variant: str, seed: int, arm: str, args) -> dict:
    """One closed-loop run of an arm (cached in reports/)."""
    path = os.path.join(
        workdir, "reports", f"online-{arm}-{variant}-s{seed}-u{args.users}-t{args.steps}.json"
    )
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    from ntr.reasons.data import load_items  # noqa: PLC0415
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415
    from ntr.serving.reasons import OnlineReasons  # noqa: PLC0415
    from ntr.serving.recommender import RecommenderConfig  # noqa: PLC0415
    from ntr.simulation import closed_loop as loop  # noqa: PLC0415
    from ntr.simulation.rankers import RecommenderRanker  # noqa: PLC0415
    from ntr.simulation.reason_arms import ReasonArm  # noqa: PLC0415

    raw = os.path.join(workdir, "raw")
    config, world, begin = loop_start(workdir, args.users, args.steps)
    reasons = None
    threshold = 1.01
    if arm in ("predicted", "predicted_all"):
        items = load_items(os.path.join(raw, "items.jsonl"))
        reasons = OnlineReasons(os.path.join(workdir, f"reasons-s{seed}"), items, threads=None)
        threshold = reasons.threshold if arm == "predicted" else 0.0
    model = ExportedModel(os.path.join(workdir, "models", model_tag(variant, seed)))
    ranker = RecommenderRanker.with_filters(model, config=RecommenderConfig(predicted_threshold=threshold))
    kind = "predicted" if arm == "predicted_all" else arm
    wrapped = ReasonArm(ranker, kind, reasons, threshold, liked_fn(world, np.array(sorted(begin))))
    result = loop.story(world, wrapped, begin, config)
    result["reason_counts"] = wrapped.counts
    result["threshold"] = threshold
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    print("closed loop", arm, variant, seed, "done", flush=True)
    return result


def counterfactual_arms(workdir: str, variant: str, seed: int, pairs: int) -> dict:
    """The counterfactual behind the filters: a reasonless dislike / a skip of X served as
    stated (nothing to act on but the item) and with a predicted reason (skips labelled too)."""
    from benchmarks.common import cached_counterfactual  # noqa: PLC0415
    from ntr.reasons.data import load_items  # noqa: PLC0415
    from ntr.retrieval.data import read_histories  # noqa: PLC0415
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415
    from ntr.serving.reasons import OnlineReasons  # noqa: PLC0415
    from ntr.serving.recommender import RecommenderConfig  # noqa: PLC0415
    from ntr.simulation.rankers import RecommenderRanker  # noqa: PLC0415
    from ntr.simulation.reason_arms import ReasonArm  # noqa: PLC0415

    histories = read_histories(os.path.join(workdir, "data"), "test")
    out = {}
    for arm in ("stated", "predicted", "predicted_all"):

        def make(arm=arm):
            model = ExportedModel(os.path.join(workdir, "models", model_tag(variant, seed)))
            reasons, threshold = None, 1.01
            if arm != "stated":
                items = load_items(os.path.join(workdir, "raw", "items.jsonl"))
                reasons = OnlineReasons(os.path.join(workdir, f"reasons-s{seed}"), items, True, threads=None)
                threshold = reasons.threshold if arm == "predicted" else 0.0
            config = RecommenderConfig(predicted_threshold=threshold)
            ranker = RecommenderRanker.with_filters(model, config=config)
            kind = "stated" if arm == "stated" else "predicted"
            return ReasonArm(ranker, kind, reasons, threshold, key_by="seed")

        name = f"online-{arm}-{variant}-s{seed}-cf"
        out[arm] = cached_counterfactual(workdir, name, histories, pairs, make, ("none", "skip"))
    return out


def counterfactual_lines(result: dict, pairs: int) -> list[str]:
    lines = [
        "",
        f"Counterfactual behind the filters (seed 0, {pairs:,} pairs, top 20): after a dislike without a reason "
        "(`none`) or a skip of X, the change of each share, served as stated (the item goes) and with a reason "
        "predicted for it (`--label-skips` on).\n",
        "| served | none → same creator | none → same category | skip → same creator | skip → same category |",
        "|---|---|---|---|---|",
    ]
    served = (
        ("stated", "as stated"),
        ("predicted", "with a predicted reason (card threshold)"),
        ("predicted_all", "with a predicted reason, no threshold"),
    )
    for arm, name in served:
        cells = []
        for branch in ("none", "skip"):
            for share in ("creator", "category"):
                entry = result[arm]["reasons"][branch][share]
                value, ci = entry["value"], entry["ci95"]
                cells.append(
                    "n/a"
                    if value is None
                    else f"{100 * value:+.1f}% [{100 * ci[0]:+.1f}%, {100 * ci[1]:+.1f}%]"
                )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/ntr-bench", help="work directories go under here")
    parser.add_argument("--seeds", default="0,1,2", help="retriever and reason-model seeds")
    parser.add_argument("--variant", default="ntr_history", help="the served retriever")
    parser.add_argument("--share", type=float, default=0.3, help="share of dislikes whose reason is stated")
    parser.add_argument("--scale", default="default", help="world size (ntr generate --scale)")
    parser.add_argument("--users", type=int, default=1000, help="closed-loop users")
    parser.add_argument("--steps", type=int, default=30, help="closed-loop steps")
    parser.add_argument("--pairs", type=int, default=1000, help="counterfactual pairs (0: no counterfactual)")
    parser.add_argument("--section", default="online_reasons", help="BENCHMARKS.md section to write")
    args = parser.parse_args()
    workdir = os.path.join(args.root, f"reasons-{args.scale}-given{args.share:g}")
    if not os.path.exists(os.path.join(workdir, "data", "stats.json")):
        run(
            [
                NTR,
                "generate",
                "--workdir",
                workdir,
                "--scale",
                args.scale,
                "--reason-given-share",
                str(args.share),
            ]
        )
        run([NTR, "preprocess", "--workdir", workdir])
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, list[dict]] = {arm: [] for arm in ARM_NAMES}
    cards = []
    for seed in seeds:
        train_and_evaluate(workdir, args.variant, seed, [])
        reason_dir = os.path.join(workdir, f"reasons-s{seed}")
        if not os.path.exists(os.path.join(reason_dir, "model.pt")):
            run([NTR, "reasons", "train", "--workdir", workdir, "--seed", str(seed), "--model-dir", reason_dir,
                 "--cache-dir", os.path.join(workdir, "reason-cache")])  # fmt: skip
        with open(os.path.join(reason_dir, "config.json"), encoding="utf-8") as handle:
            cards.append(json.load(handle))
        for arm in ARM_NAMES:
            runs[arm].append(loop_arm(workdir, args.variant, seed, arm, args))

    measures = (
        ("dislike rate", lambda s: s["dislike_rate"]["mean"], "{:.4f}"),
        ("skip rate", lambda s: s["skip_rate"]["mean"], "{:.3f}"),
        ("watch s/step", lambda s: s["watch_seconds"]["mean"], "{:.2f}"),
        ("repeated creator dislikes", lambda s: 100 * (s["repeated_creator_dislike_rate"] or 0.0), "{:.1f}%"),
        ("disliked creator never shown again", lambda s: 100 * s["creator_shown_again"]["share_never_shown_again"],
         "{:.1f}%"),
    )  # fmt: skip
    lines = [
        f"World: `--scale {args.scale}`, feed policy, users state the reason of {100 * args.share:.0f}% of their explicit "
        f"dislikes. Served: `{args.variant}` behind the Recommender's filters. Closed loop: {args.users} users, "
        f"{args.steps} steps, slate 10, users watch the first item; seeds {args.seeds} (retriever and reason model "
        "trained with each); mean over seeds ± SE over seeds.\n",
        "| arm | " + " | ".join(name for name, _, _ in measures) + " |",
        "|---|" + "---|" * len(measures),
    ]
    values = {}
    for arm, name in ARM_NAMES.items():
        cells = []
        for measure, get, form in measures:
            values[arm, measure] = [get(s) for s in runs[arm]]
            mean, se = mean_se(values[arm, measure])
            cells.append(f"{form.format(mean)} ± {form.format(se).rstrip('%')}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Share of the stated → oracle gap that the predictions recover (per seed, then mean ± SE):\n",
        "| measure | stated + predicted | no threshold |",
        "|---|---|---|",
    ]
    for measure, _, _ in measures:
        cells = []
        for arm in ("predicted", "predicted_all"):
            shares = [
                (s - p) / (s - o) if s != o else float("nan")
                for s, p, o in zip(
                    values["stated", measure], values[arm, measure], values["oracle", measure], strict=True
                )
            ]
            mean, se = mean_se(shares)
            cells.append(f"{100 * mean:+.0f}% ± {100 * se:.0f}")
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")
    for arm in ("predicted", "predicted_all"):
        counts = [s["reason_counts"] for s in runs[arm]]
        per = lambda key, counts=counts: mean_se([1000 * c[key] / max(c["predicted"], 1) for c in counts])  # noqa: E731
        thresholds = [s["threshold"] for s in runs[arm]]
        lines += [
            "",
            f"{ARM_NAMES[arm]}: {mean_se([c['predicted'] for c in counts])[0]:.0f} predictions per run; "
            f"group-removal threshold {', '.join(f'{t:.3f}' for t in thresholds)}"
            f"{' (chosen on validation users; 1.010 = never)' if arm == 'predicted' else ''}. Per 1,000 predictions: "
            f"group removals {per('acted')[0]:.0f} ± {per('acted')[1]:.0f}, right {per('acted_right')[0]:.0f} ± "
            f"{per('acted_right')[1]:.0f}, wrong {per('acted_wrong')[0]:.0f} ± {per('acted_wrong')[1]:.0f}; "
            f"collateral (a wrong removal of a followed creator / a favourite category): "
            f"{per('wrong_liked_creator')[0]:.1f} / {per('wrong_liked_category')[0]:.1f}.",
        ]
    accuracy = [c["metrics"]["reason"]["explicit"]["accuracy"] for c in cards]
    valid = "; ".join(
        f"seed {seed}: {c['serving']['n']} dislikes, threshold {c['serving']['threshold']:.3f}"
        + (
            " (none reached it with >= 20 removals: groups never follow a prediction)"
            if c["serving"]["precision"] is None
            else f" (precision {c['serving']['precision']:.2f} on {c['serving']['removals']} removals)"
        )
        for seed, c in zip(seeds, cards, strict=True)
    )
    lines += [
        "",
        f"Reason model on held-out users' dislikes (true reasons): accuracy {mean_se(accuracy)[0]:.3f} ± "
        f"{mean_se(accuracy)[1]:.3f}. Threshold choice (target precision 0.9 of predicted group removals, on "
        f"validation users' dislikes with a stated reason): {valid}.",
    ]
    if args.pairs > 0:
        lines += counterfactual_lines(
            counterfactual_arms(workdir, args.variant, seeds[0], args.pairs), args.pairs
        )
    write_section(args.section, "Online reasons in the closed loop", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
