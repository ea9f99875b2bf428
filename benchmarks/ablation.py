"""One switch at a time around the `ntr_history` preset: NDCG@10 / NegHit@10 and the model's
reaction to a dislike, to see where its ranking cost comes from and what each part buys.

Per run: `ntr train --variant V --seed S --set ...` + `ntr evaluate` (test split), then the
counterfactual (model alone, top 20) on `--pairs` (history, k) pairs of the test split. One
seed: a map of the switches, not a measurement with intervals (the presets' 3-seed figures are
in the responsiveness and retrieval-quality sections).

    python -m benchmarks.ablation --dataset world|ml100k [--root /tmp/ntr-bench] [--seed 0]
"""

from __future__ import annotations

import argparse
import functools
import os

from benchmarks.common import (
    DATASETS_DIR,
    cached_counterfactual,
    model_ranker,
    model_tag,
    prepare,
    relative,
    train_and_evaluate,
    write_section,
)

SOFTMAX = 'model.ntr_form="softmax"'  # the preset before it took top-K NTR
# dataset -> [(label, model suffix, variant, overrides)]
RUNS = {
    "world": [
        ("`positives_only`", "", "positives_only", []),
        ("`neg_features_only`", "", "neg_features_only", []),
        ("`ntr` with top-K NTR", "topk", "ntr", ['model.ntr_form="topk"']),
        ("`ntr_history` (the preset: top-K NTR)", "", "ntr_history", []),
        ("preset, history-side NTR trains the query only", "noitem", "ntr_history",
         ["model.history_trains_items=false"]),
        ("preset, history-side NTR normalised", "norm", "ntr_history", ["model.history_normalise=true"]),
        ("previous preset (softmax NTR)", "softmax", "ntr_history", [SOFTMAX]),
        ("previous, history-side NTR trains the query only", "softmax-noitem", "ntr_history",
         [SOFTMAX, "model.history_trains_items=false"]),
        ("previous, trains the query only, normalised", "softmax-noitem-norm", "ntr_history",
         [SOFTMAX, "model.history_trains_items=false", "model.history_normalise=true"]),
    ],
    "ml100k": [
        ("`positives_only`", "", "positives_only", []),
        ("`ntr_history` (the preset: top-K NTR)", "", "ntr_history", []),
        ("preset, history-side NTR trains the query only", "noitem", "ntr_history",
         ["model.history_trains_items=false"]),
        ("preset, history-side NTR normalised", "norm", "ntr_history", ["model.history_normalise=true"]),
        ("previous preset (softmax NTR)", "softmax", "ntr_history", [SOFTMAX]),
        ("previous, no negative path", "softmax-nopath", "ntr_history", [SOFTMAX, "model.negative_path=false"]),
        ("previous, no history-side NTR", "softmax-nohist", "ntr_history",
         [SOFTMAX, "model.history_weight=0.0", "model.history_implicit_weight=0.0"]),
        ("previous, query at the last event", "softmax-event", "ntr_history",
         [SOFTMAX, 'model.query_anchor="event"']),
        ("previous, history-side NTR trains the query only", "softmax-noitem", "ntr_history",
         [SOFTMAX, "model.history_trains_items=false"]),
        ("previous, trains the query only, normalised", "softmax-noitem-norm", "ntr_history",
         [SOFTMAX, "model.history_trains_items=false", "model.history_normalise=true"]),
        ("previous, history decay 0.9", "softmax-dec9", "ntr_history", [SOFTMAX, "model.history_decay=0.9"]),
        ("previous, history decay 0.5", "softmax-dec5", "ntr_history", [SOFTMAX, "model.history_decay=0.5"]),
        ("previous, w_h 0.1 / 0.01", "softmax-w01", "ntr_history",
         [SOFTMAX, "model.history_weight=0.1", "model.history_implicit_weight=0.01"]),
        ("previous, w_h 0.03 / 0.003", "softmax-w003", "ntr_history",
         [SOFTMAX, "model.history_weight=0.03", "model.history_implicit_weight=0.003"]),
    ],
}  # fmt: skip
# dataset -> (counterfactual branches, [(column title, branch, share)])
COLUMNS = {
    "world": (
        ("creator", "topic", "quality"),
        [("creator dislike: same creator", "creator", "creator"),
         ("creator dislike: same category", "creator", "category"),
         ("topic dislike: same category", "topic", "category"),
         ("quality dislike: same item", "quality", "item")],
    ),
    "ml100k": (
        ("none",),
        [("dislike: same director", "none", "creator"), ("dislike: same genre", "none", "category"),
         ("dislike: same film", "none", "item"), ("dislike: other", "none", "other")],
    ),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(RUNS), default="world", help="which log")
    parser.add_argument("--root", default="/tmp/ntr-bench", help="work directories go under here")
    parser.add_argument("--datasets-dir", default=DATASETS_DIR, help="public datasets (env NTR_DATASETS)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--pairs", type=int, default=1000, help="counterfactual pairs per model")
    args = parser.parse_args()
    from ntr.retrieval.data import read_histories  # noqa: PLC0415

    workdir = os.path.join(args.root, args.dataset)
    prepare(args.dataset, workdir, os.path.abspath(args.datasets_dir))
    histories = read_histories(os.path.join(workdir, "data"), "test")
    branches, columns = COLUMNS[args.dataset]
    header = "| run | overrides | NDCG@10 | NegHit@10 | " + " | ".join(c[0] for c in columns) + " |"
    lines = [header, "|" + "---|" * (4 + len(columns))]
    base = None
    for label, suffix, variant, overrides in RUNS[args.dataset]:
        report = train_and_evaluate(workdir, variant, args.seed, overrides, suffix)
        tag = model_tag(variant, args.seed, suffix)
        ranker = functools.partial(model_ranker, workdir, tag)
        cf = cached_counterfactual(workdir, f"ablation-{tag}", histories, args.pairs, ranker, branches)
        ndcg, neghit = (report["metrics"][m]["mean"] for m in ("ndcg@10", "neghit@10"))
        base = base or (ndcg, neghit)  # the first run is the reference
        shares = [cf["reasons"][branch][share]["value"] for _, branch, share in columns]
        cells = [f"{100 * v:+.1f}%" if v is not None else "n/a" for v in shares]
        sets = ", ".join(f"`{o}`" for o in overrides) or "-"
        lines.append(
            f"| {label} | {sets} | {ndcg:.4f} ({relative(ndcg, base[0])}) "
            f"| {neghit:.4f} ({relative(neghit, base[1])}) | " + " | ".join(cells) + " |"
        )
        print(lines[-1], flush=True)
    body = (
        f"{args.dataset}, seed {args.seed}, one training run per row; NDCG@10 / NegHit@10 on the test split "
        "(in brackets: change against the first row); the model's reaction to one event = change of each "
        f"share of the top 20, {args.pairs:,} counterfactual pairs, model alone.\n\n" + "\n".join(lines)
    )
    write_section(f"ablation_{args.dataset}", f"Ablation around ntr_history ({args.dataset})", body)


if __name__ == "__main__":
    main()
