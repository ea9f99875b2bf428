"""Which data each variant needs: a grid over the world's re-exposure rate and the persistence of
users' aversion, with `neg_features_only`, `ntr` and `ntr_history` trained on each cell.

Per cell: `ntr generate` (default world but `--users`, the feed's creator-continuation share
and the aversion persistence), `ntr preprocess`, then per variant `ntr train` + `ntr evaluate`
and the counterfactual (model alone, top 20). The table gives what the log teaches (share of
the next 10 exposures with the disliked creator; explicit-negative + skip share of later
exposures to a disliked creator) and, per variant, the creator-dislike response of the
same-creator share and NDCG@10.

    python -m benchmarks.sensitivity [--root /tmp/ntr-bench/grid] [--users 1000] [--seeds 0]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os

from benchmarks.common import (
    NTR,
    cached_counterfactual,
    mean_se,
    model_ranker,
    model_tag,
    run,
    train_and_evaluate,
    write_section,
)

VARIANTS = ("neg_features_only", "ntr", "ntr_history")


def _cell_dir(root: str, share: float, persistence: float) -> str:
    return os.path.join(root, f"reexposure{share:g}-persistence{persistence:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", default="/tmp/ntr-bench/grid", help="one work directory per cell under here"
    )
    parser.add_argument("--users", type=int, default=1000, help="world users per cell")
    parser.add_argument("--reexposure", default="0.1,0.25,0.4", help="feed creator-continuation shares")
    parser.add_argument("--persistence", default="0.33,0.67,1", help="aversion persistence values")
    parser.add_argument("--seeds", default="0", help="training seeds per cell and variant")
    parser.add_argument("--pairs", type=int, default=1000, help="counterfactual pairs per model")
    parser.add_argument("--set", action="append", default=[], help="training override for every run")
    args = parser.parse_args()
    from ntr.retrieval.data import read_histories  # noqa: PLC0415
    from ntr.simulation.lessons import lesson_in_log  # noqa: PLC0415
    from ntr.simulation.world import scaled_config, simulate  # noqa: PLC0415

    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    cells = itertools.product(
        [float(x) for x in args.reexposure.split(",")], [float(x) for x in args.persistence.split(",")]
    )
    for share, persistence in cells:
        workdir = _cell_dir(args.root, share, persistence)
        flags = ["--users", str(args.users), "--feed-creator-share", str(share)]
        flags += ["--aversion-persistence", str(persistence)]
        if not os.path.exists(os.path.join(workdir, "data", "stats.json")):
            run([NTR, "generate", "--workdir", workdir, *flags])
            run([NTR, "preprocess", "--workdir", workdir])
        lesson_path = os.path.join(workdir, "reports", "lesson.json")
        if not os.path.exists(lesson_path):
            log = simulate(
                scaled_config(
                    "default", n_users=args.users, feed_creator_share=share, aversion_persistence=persistence
                )
            )
            os.makedirs(os.path.dirname(lesson_path), exist_ok=True)
            with open(lesson_path, "w", encoding="utf-8") as handle:
                json.dump(lesson_in_log(list(log.event_rows()), list(log.catalogue.item_rows())), handle)
        with open(lesson_path, encoding="utf-8") as handle:
            lesson = json.load(handle)
        mix = lesson["later"]["creator"]["labels"]
        negative = (mix["EXPLICIT_NEGATIVE"] or 0) + (mix["IMPLICIT_NEGATIVE"] or 0)
        cells_out = [
            f"{share:g}",
            f"{persistence:g}",
            f"{100 * lesson['next_same_creator']:.1f}%",
            f"{100 * negative:.0f}%",
        ]
        histories = read_histories(os.path.join(workdir, "data"), "test")
        for variant in VARIANTS:
            creator, ndcg = [], []
            for seed in seeds:
                report = train_and_evaluate(workdir, variant, seed, args.set)
                ndcg.append(report["metrics"]["ndcg@10"]["mean"])
                tag = model_tag(variant, seed)
                result = cached_counterfactual(
                    workdir, tag, histories, args.pairs, functools.partial(model_ranker, workdir, tag)
                )
                creator.append(result["reasons"]["creator"]["creator"]["value"] or 0.0)
            c_mean, c_se = mean_se(creator)
            n_mean, _ = mean_se(ndcg)
            cells_out.append(
                f"{100 * c_mean:+.1f}%"
                + (f" ± {100 * c_se:.1f}" if len(seeds) > 1 else "")
                + f" / {n_mean:.4f}"
            )
        rows.append("| " + " | ".join(cells_out) + " |")
        print(rows[-1], flush=True)
    overrides = ", ".join(f"`{x}`" for x in args.set) or "none"
    body = (
        f"Default world with {args.users:,} users per cell, feed policy; seeds {args.seeds}; {args.pairs:,} "
        f"counterfactual pairs per model (model alone, top 20); training overrides: {overrides}. "
        '"Re-exposure" is the feed\'s creator-continuation share; "persistence" the chance a hated '
        "creator or topic is felt as such on an exposure. Per variant: creator dislike → change of the "
        "same-creator share / NDCG@10 (test split).\n\n"
        "| re-exposure | persistence | next 10 after a dislike: same creator | later same-creator exposures: "
        "negative | `neg_features_only` | `ntr` | `ntr_history` |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    write_section("sensitivity", "Sensitivity: which data each variant needs", body)


if __name__ == "__main__":
    main()
