"""Counterfactual responsiveness on real logs with creators and categories: ml-100k (director as
creator, genres as categories) and KuaiRand-Pure (author as creator, tags as categories).

Real logs state no reasons, so branch B is a dislike without one (`none`) and, on KuaiRand-Pure,
also a skip. Per dataset, variant and seed: `ntr train` + `ntr evaluate` (as
`benchmarks.retrieval_quality`, whose work directories it shares), then the counterfactual on
2,000 (history, k) pairs of the test split, model alone, top 20. Mean over seeds ± SE over
seeds (no SE with one seed); in brackets the widest 95% bootstrap interval of the seeds.

    python -m benchmarks.real_responsiveness [--root /tmp/ntr-bench] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import functools
import os

from benchmarks.common import (
    DATASETS_DIR,
    cached_counterfactual,
    mean_se,
    model_ranker,
    model_tag,
    prepare,
    train_and_evaluate,
    write_section,
)

VARIANTS = ("positives_only", "ntr", "ntr_history")
# dataset -> (label, branches, (branch, share) columns)
SETUPS = {
    "ml100k": (
        "ml-100k + directors",
        ("none",),
        (("none", "creator"), ("none", "category"), ("none", "item"), ("none", "other")),
    ),
    "kuairand_pure": (
        "KuaiRand-Pure",
        ("none", "skip"),
        (("none", "creator"), ("none", "category"), ("none", "item"), ("skip", "item"), ("none", "other")),
    ),
}


def _cell(runs: list[dict], branch: str, share: str) -> str:
    entries = [r["reasons"][branch][share] for r in runs]
    values = [e["value"] for e in entries if e["value"] is not None]
    if not values:
        return "n/a (never in A's top 20)"
    mean, se = mean_se(values)
    cis = [e["ci95"] for e in entries if e["ci95"]]
    a = sum(e["share_a"] for e in entries) / len(entries)
    spread = f" ± {100 * se:.1f}" if len(values) > 1 else ""  # no SE over one seed
    return (
        f"{100 * mean:+.1f}%{spread} [{100 * min(c[0] for c in cis):+.1f}%, "
        f"{100 * max(c[1] for c in cis):+.1f}%] (A {100 * a:.1f}%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/ntr-bench", help="work directories go under here")
    parser.add_argument("--datasets-dir", default=DATASETS_DIR, help="public datasets (env NTR_DATASETS)")
    parser.add_argument("--datasets", default="ml100k,kuairand_pure", help="comma-separated datasets")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds")
    parser.add_argument("--pairs", type=int, default=2000, help="counterfactual pairs per model")
    parser.add_argument("--section", default="real_responsiveness", help="BENCHMARKS.md section to write")
    args = parser.parse_args()
    from ntr.retrieval.data import read_histories  # noqa: PLC0415

    seeds = [int(s) for s in args.seeds.split(",")]
    sections = []
    for name in args.datasets.split(","):
        label, branches, columns = SETUPS[name]
        workdir = os.path.join(args.root, name)
        prepare(name, workdir, os.path.abspath(args.datasets_dir))
        histories = read_histories(os.path.join(workdir, "data"), "test")
        lines = [
            f"**{label}**: change of each share of the top 20 after the event (A = its share in branch A)\n",
            "| variant | NDCG@10 | " + " | ".join(f"{b} → same {s}" for b, s in columns) + " |",
            "|---|---|" + "---|" * len(columns),
        ]
        for variant in VARIANTS:
            runs, ndcg = [], []
            for seed in seeds:
                ndcg.append(train_and_evaluate(workdir, variant, seed, [])["metrics"]["ndcg@10"]["mean"])
                tag = model_tag(variant, seed)
                make = functools.partial(model_ranker, workdir, tag)
                runs.append(
                    cached_counterfactual(workdir, f"{tag}-real", histories, args.pairs, make, branches)
                )
            mean, se = mean_se(ndcg)
            cells = [_cell(runs, b, s) for b, s in columns]
            ndcg_cell = f"{mean:.4f}" + (f" ± {se:.4f}" if len(seeds) > 1 else "")
            lines.append(f"| `{variant}` | {ndcg_cell} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
        sections.append("\n".join(lines))
    body = (
        "Branch A watches item X to the end; branch B also dislikes X without a reason (`none`: real logs "
        'state none) or skips it. "other": items sharing neither creator nor category with X. '
        f"{args.pairs:,} pairs per model, test split, model alone, seeds {args.seeds}.\n\n"
        + "\n\n".join(sections)
    )
    write_section(args.section, "Counterfactual responsiveness on real logs", body)


if __name__ == "__main__":
    main()
