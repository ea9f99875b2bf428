"""A peer in the quality tables: RecTools' SASRec against ntr's `positives_only`, same splits,
same full-catalogue protocol.

Per dataset (the workdirs `benchmarks.retrieval_quality` uses) it exports the train split's
positive events and, per positive test target, the positive events before it in its window (what
`positives_only` reads), runs `benchmarks/peer/sasrec_rectools.py` in the peer environment
(`--peer-python`: RecTools needs numpy < 2, ntr pins numpy 2), and scores the peer's ranking as
`ntr evaluate` scores ntr's: every item of the window before the target other than the target is
removed, then NDCG@10 / recall@10 over positive targets, mean +- SE over targets. ntr's figures
are its `positives_only` runs of the same seeds (trained here if missing).

    python -m benchmarks.peer_sasrec --peer-python /tmp/peer-venv/bin/python
        [--datasets ml100k,kuairand,world] [--root /tmp/ntr-bench] [--seeds 0,1,2]

Set up the peer environment once (network to the package index):
    python3.11 -m venv /tmp/peer-venv && /tmp/peer-venv/bin/pip install "rectools[torch]==0.19.0" torch==2.13.0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess

import numpy as np

from benchmarks.common import DATASETS_DIR, mean_se, prepare, train_and_evaluate, write_section

K = 10
PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer", "sasrec_rectools.py")


def export(workdir: str) -> str:
    """Writes WORKDIR/peer/{train.tsv, queries.jsonl, filters.jsonl}; returns the folder."""
    from ntr.retrieval.data import read_histories  # noqa: PLC0415 (TensorFlow on demand)

    out = os.path.join(workdir, "peer")
    if os.path.exists(os.path.join(out, "filters.jsonl")):
        return out
    os.makedirs(out, exist_ok=True)
    data = os.path.join(workdir, "data")
    seen = set()
    with open(os.path.join(out, "train.tsv"), "w", encoding="utf-8") as handle:
        handle.write("user_id\titem_id\ttimestamp\n")
        for w, window in enumerate(read_histories(data, "train", targets=True)):
            for event in window:
                key = (w, event["item_id"], event["timestamp"])
                if event["label"] == "POSITIVE" and key not in seen:
                    seen.add(key)
                    handle.write(f"w{w}\t{event['item_id']}\t{event['timestamp']}\n")
    with (
        open(os.path.join(out, "queries.jsonl"), "w", encoding="utf-8") as queries,
        open(os.path.join(out, "filters.jsonl"), "w", encoding="utf-8") as filters,
    ):
        for w, window in enumerate(read_histories(data, "test", targets=True)):
            for t, event in enumerate(window):
                if not (event["is_target"] and event["label"] == "POSITIVE") or t == 0:
                    continue
                before = window[:t]
                query = f"w{w}-{t}"
                history = [e["item_id"] for e in before if e["label"] == "POSITIVE"]
                queries.write(json.dumps({"query": query, "history": history}) + "\n")
                drop = sorted({e["item_id"] for e in before} - {event["item_id"]})
                filters.write(json.dumps({"query": query, "target": event["item_id"], "drop": drop}) + "\n")
    return out


def popularity(folder: str) -> str:
    """Ranks every query by the train split's positive counts (ties by item id), as a floor both
    models should clear; returns the ranked file (same format as the peer's)."""
    path = os.path.join(folder, "ranked-popularity.jsonl")
    if os.path.exists(path):
        return path
    counts: dict[str, int] = {}
    with open(os.path.join(folder, "train.tsv"), encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            item = line.split("\t")[1]
            counts[item] = counts.get(item, 0) + 1
    order = sorted(counts, key=lambda i: (-counts[i], i))
    with (
        open(os.path.join(folder, "filters.jsonl"), encoding="utf-8") as filters,
        open(path, "w", encoding="utf-8") as out,
    ):
        for f in map(json.loads, filters):
            # Long enough that the history filter still leaves K.
            out.write(json.dumps({"query": f["query"], "top": order[: K + len(f["drop"])]}) + "\n")
    return path


def score(folder: str, ranked_path: str) -> dict:
    """NDCG@10 and recall@10 of the peer's lists after ntr's history filter, with the metrics
    `ntr evaluate` uses (a target missing from the filtered top 10 gets rank K: no hit)."""
    from ntr.retrieval import metrics  # noqa: PLC0415

    with open(os.path.join(folder, "filters.jsonl"), encoding="utf-8") as handle:
        filters = [json.loads(line) for line in handle]
    with open(ranked_path, encoding="utf-8") as handle:
        top = {r["query"]: r["top"] for r in map(json.loads, handle)}
    ranks, short = [], 0
    for f in filters:
        drop = set(f["drop"])
        kept = [i for i in top.get(f["query"], []) if i not in drop][:K]
        short += len(kept) < K and len(top.get(f["query"], [])) > 0
        ranks.append(kept.index(f["target"]) if f["target"] in kept else K)
    ranks = np.asarray(ranks)
    return {
        "ndcg@10": metrics.mean_se(metrics.ndcg_at_k(ranks, K)),
        "recall@10": metrics.mean_se(metrics.hit_at_k(ranks, K)),
        "n": len(filters),
        "short_lists": short,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-python", required=True, help="python of the environment with RecTools")
    parser.add_argument("--datasets", default="ml100k,kuairand,world", help="comma-separated datasets")
    parser.add_argument("--root", default="/tmp/ntr-bench", help="work directories go under here")
    parser.add_argument("--datasets-dir", default=DATASETS_DIR, help="public datasets (env NTR_DATASETS)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (both models)")
    parser.add_argument("--epochs", type=int, default=50, help="peer's most epochs (early stopping)")
    parser.add_argument("--section", default="peer_sasrec", help="BENCHMARKS.md section to write")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    lines = [
        "Same splits and protocol for both: every positive test target ranked over the whole catalogue, the items "
        f"before it in its window removed (the target excepted), NDCG@10 / recall@10 mean ± SE over targets. "
        "ntr: `positives_only` with the default config. Peer: RecTools 0.19.0 `SASRecModel` (2 blocks, 2 heads, "
        "64 factors, softmax loss over the catalogue, lr 1e-3, batch 128, early stopping on each training "
        f"sequence's last item, at most {args.epochs} epochs), fed the positive events before each target. "
        "The peer trains on the train split's windows as sequences (one RecTools user per window; positive "
        "events only, deduplicated within a window).\n",
        "Popularity: every target ranked by the train split's positive counts, the same filter (a floor).\n",
        "| dataset | seed | ntr `positives_only` NDCG@10 | peer SASRec NDCG@10 | ntr / peer | popularity NDCG@10 | "
        "ntr recall@10 | peer recall@10 | peer epochs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in args.datasets.split(","):
        workdir = os.path.join(args.root, name)
        prepare(name, workdir, os.path.abspath(args.datasets_dir))
        folder = export(workdir)
        floor = score(folder, popularity(folder))["ndcg@10"]
        ratios = []
        for seed in seeds:
            ours = train_and_evaluate(workdir, "positives_only", seed, [])["metrics"]
            ranked = os.path.join(folder, f"ranked-s{seed}.jsonl")
            if not os.path.exists(ranked):
                subprocess.run(
                    [args.peer_python, PEER_SCRIPT, "--input", folder, "--output", ranked, "--seed", str(seed),
                     "--epochs", str(args.epochs)],
                    check=True,
                )  # fmt: skip
            peer = score(folder, ranked)
            with open(ranked + ".meta.json", encoding="utf-8") as handle:
                meta = json.load(handle)
            ratio = (
                ours["ndcg@10"]["mean"] / peer["ndcg@10"]["mean"] if peer["ndcg@10"]["mean"] else float("nan")
            )
            ratios.append(ratio)
            lines.append(
                f"| {name} | {seed} | {ours['ndcg@10']['mean']:.4f} ± {ours['ndcg@10']['se']:.4f} | "
                f"{peer['ndcg@10']['mean']:.4f} ± {peer['ndcg@10']['se']:.4f} | {ratio:.2f} | "
                f"{floor['mean']:.4f} ± {floor['se']:.4f} | "
                f"{ours['recall@10']['mean']:.4f} | {peer['recall@10']['mean']:.4f} | "
                f"{meta['epochs_run']} |"
            )
            print(lines[-1], flush=True)
        if len(ratios) > 1:
            mean, se = mean_se(ratios)
            lines.append(f"| {name} | mean | | | {mean:.2f} ± {se:.2f} | | | | |")
    body = "\n".join(lines)
    print(body)
    write_section(args.section, "A peer: RecTools SASRec against ntr positives_only", body)


if __name__ == "__main__":
    main()
