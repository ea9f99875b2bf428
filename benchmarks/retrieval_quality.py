"""Retrieval quality of the ablation variants on the synthetic world, ml-100k and KuaiRand.

For each dataset, variant and seed: `ntr train` + `ntr evaluate` (test split, full corpus,
history filtered). Each figure is the mean over seeds ± the standard error over seeds. Runs
already evaluated in the work directory are reused, so an interrupted benchmark resumes.

    python -m benchmarks.retrieval_quality [--datasets world,ml100k,kuairand] [--seeds 0,1,2]
        [--root /tmp/ntr-bench] [--datasets-dir $NTR_DATASETS] [--set model.softmax="sampled"]
        [--variants positives_only,ntr] [--section retrieval_quality_sampled]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from benchmarks.common import (
    DATASETS,
    DATASETS_DIR,
    METRICS,
    mean_se,
    prepare,
    relative,
    train_and_evaluate,
    write_section,
)


def table(name: str, results: dict[str, list[dict]]) -> str:
    lines = [
        f"**{name}** (test split; mean ± SE over {len(next(iter(results.values())))} seeds)\n",
        "| variant | "
        + " | ".join(METRICS)
        + " | NegHit@10 vs positives_only | NDCG@10 vs positives_only | s/run |",
        "|---|" + "---|" * (len(METRICS) + 3),
    ]
    base = {m: mean_se([r["metrics"][m]["mean"] for r in results["positives_only"]])[0] for m in METRICS}
    for variant, runs in results.items():
        cells = []
        for metric in METRICS:
            mean, se = mean_se([r["metrics"][metric]["mean"] for r in runs])
            cells.append(f"{mean:.4f} ± {se:.4f}")
        neg = mean_se([r["metrics"]["neghit@10"]["mean"] for r in runs])[0]
        ndcg = mean_se([r["metrics"]["ndcg@10"]["mean"] for r in runs])[0]
        seconds = np.mean([r.get("seconds", np.nan) for r in runs])
        lines.append(
            f"| `{variant}` | " + " | ".join(cells) + f" | {relative(neg, base['neghit@10'])} "
            f"| {relative(ndcg, base['ndcg@10'])} | {seconds:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="world,ml100k,kuairand", help="comma-separated datasets")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--root", default="/tmp/ntr-bench", help="work directories go under here")
    parser.add_argument("--datasets-dir", default=DATASETS_DIR, help="public datasets (env NTR_DATASETS)")
    parser.add_argument("--set", action="append", default=[], help="config override for every run")
    parser.add_argument(
        "--variants", help="comma-separated subset of variants (default: all the dataset has)"
    )
    parser.add_argument("--section", default="retrieval_quality", help="BENCHMARKS.md section to write")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    sections = []
    for name in args.datasets.split(","):
        workdir = os.path.join(args.root, name)
        prepare(name, workdir, os.path.abspath(args.datasets_dir))
        variants = [
            v for v in DATASETS[name]["variants"] if not args.variants or v in args.variants.split(",")
        ]
        results = {v: [train_and_evaluate(workdir, v, s, args.set) for s in seeds] for v in variants}
        sections.append(table(name, results))
        print(sections[-1], flush=True)
    overrides = ", ".join(f"`{s}`" for s in args.set) or "none"
    body = (
        "Each run: `ntr train --variant V --seed S` with the default config (early stopping on valid "
        f"NDCG@10), then `ntr evaluate` on the test split. Config overrides: {overrides}.\n\n"
        + "\n\n".join(sections)
    )
    title = "Retrieval quality of the ablation variants"
    if args.set:
        title += " (" + ", ".join(args.set) + ")"
    write_section(args.section, title, body)


if __name__ == "__main__":
    main()
