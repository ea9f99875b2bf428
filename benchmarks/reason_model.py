"""Reason model on the synthetic world (true reasons known), held-out users: majority class,
heuristic rule, supervised only, supervised + progressive GRPO, side by side in one run.

Examples come from `build_examples` (seed 0 user split); the supervised and GRPO models are
trained with 3 seeds on the same split and features (item vectors cached under --cache). Reason accuracy
and macro-F1 on held-out explicit dislikes and on held-out skips (whose true reasons only the
world knows); dislike prediction accuracy / F1 on the held-out mix.

    python -m benchmarks.reason_model [--workdir /tmp/ntr-bench/world] [--cache /tmp/ntr-bench/reason-cache]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks.common import mean_se, prepare, write_section


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    mean, se = mean_se(values)
    return f"{mean:.3f} ± {se:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/ntr-bench/world", help="default-world workdir")
    parser.add_argument("--cache", default="/tmp/ntr-bench/reason-cache", help="embedding cache folder")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds")
    args = parser.parse_args()
    from ntr.reasons.catalogue import ItemVectors  # noqa: PLC0415
    from ntr.reasons.data import build_examples, load_raw  # noqa: PLC0415
    from ntr.reasons.encoder import EmbeddingCache  # noqa: PLC0415
    from ntr.reasons.evaluate import evaluate, heuristic_reasons, majority_reason, reason_metrics  # noqa: PLC0415
    from ntr.reasons.train import ReasonTrainConfig, as_batch, train_grpo, train_supervised  # noqa: PLC0415

    prepare("world", args.workdir, "")
    started = time.perf_counter()
    by_user, items = load_raw(os.path.join(args.workdir, "raw"))
    examples = build_examples(by_user, items, ItemVectors.embed(items, EmbeddingCache(args.cache)))
    train, test = as_batch(examples["train"]), as_batch(examples["test"])
    prep_seconds = time.perf_counter() - started
    held = examples["test"]
    rows = {}
    majority = majority_reason(examples["train"])
    rows["majority class"] = [reason_metrics(held, np.full(len(held), majority))]
    rows["heuristic rule"] = [reason_metrics(held, heuristic_reasons(held, majority))]
    seconds = {"supervised": [], "supervised + GRPO": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        config = ReasonTrainConfig(seed=seed)
        t = time.perf_counter()
        supervised = train_supervised(train, config, log=lambda _: None)
        seconds["supervised"].append(time.perf_counter() - t)
        t = time.perf_counter()
        grpo = train_grpo(supervised, train, config, log=lambda _: None)
        seconds["supervised + GRPO"].append(seconds["supervised"][-1] + time.perf_counter() - t)
        for name, model in (("supervised", supervised), ("supervised + GRPO", grpo)):
            result = evaluate(model, test, held)
            rows.setdefault(name, []).append({**result["reason"], "dislike": result["dislike"]})
        print("seed", seed, "done", flush=True)
    lines = [
        f"Default world, {len(examples['train']):,} training examples, {len(held):,} from held-out users "
        f"({int(held.explicit.sum())} explicit dislikes, {int((held.negative & ~held.explicit).sum())} skips). "
        f"Item vectors + features: {prep_seconds:.0f} s with the item-vector cache as found. "
        "Models: 3 seeds, mean ± SE.\n",
        "| predictor | reason acc (explicit) | reason macro-F1 (explicit) | reason acc (skips) "
        "| reason macro-F1 (skips) | dislike acc | dislike F1 | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        values = [
            [r["explicit"]["accuracy"] for r in runs],
            [r["explicit"]["macro_f1"] for r in runs],
            [r["skips"]["accuracy"] for r in runs],
            [r["skips"]["macro_f1"] for r in runs],
        ]
        dislike = (
            [cell([r["dislike"]["accuracy"] for r in runs]), cell([r["dislike"]["f1"] for r in runs])]
            if "dislike" in runs[0]
            else ["-", "-"]
        )
        train_s = f"{np.mean(seconds[name]):.0f}" if name in seconds else "-"
        lines.append(
            f"| {name} | " + " | ".join(cell(v) for v in values) + f" | {' | '.join(dislike)} | {train_s} |"
        )
    write_section("reason_model", "Reason model (held-out users of the default world)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
