"""ScaNN vs brute force: queries per second at recall@10 >= 0.95, on 10^5 and 10^6 items.

Synthetic item embeddings (dim 64) drawn around sqrt(n) cluster centres, from clear clusters
(like trained item embeddings: many items near a few directions) to almost no structure (the
worst case for any ANN index); queries come from the same mixture. The
ScaNN index is built and tuned by `ntr.serving.index.build_index` (the config `ntr index`
picks by size) on 1,000 tuning queries, then recall and speed are measured on 1,000 other
queries. Brute force is the exact NumPy `BruteForce` of `ntr.serving.topk` (one matrix
product per batch). Both are timed in this one run, one query at a time (as a service asks)
and in batches of 256.

    python -m benchmarks.index_qps [--sizes 100000,1000000] [--dim 64]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import qps, write_section
from ntr.serving.index import build_index, recall_at_k
from ntr.serving.topk import BruteForce

K = 10


def mixture(rng: np.random.Generator, centres: np.ndarray, n: int, noise: float) -> np.ndarray:
    picks = rng.integers(0, len(centres), n)
    return (centres[picks] + noise * rng.normal(size=(n, centres.shape[1]))).astype(np.float32)


def run_size(n: int, dim: int, seed: int, noise: float) -> dict:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(int(np.sqrt(n)), dim)).astype(np.float32)
    items = mixture(rng, centres, n, noise)
    tune_queries, test_queries = mixture(rng, centres, 1000, noise), mixture(rng, centres, 1000, noise)
    index, manifest = build_index(items, tune_queries, k=K, target_recall=0.95, log=print)
    exact = BruteForce(items)
    recall = recall_at_k(index.search(test_queries, K)[1], exact.search(test_queries, K)[1])
    # Brute force is slow at 10^6 one by one: 200 single queries give a stable rate already.
    out = {
        "n": n,
        "noise": noise,
        "kind": manifest["config"]["kind"],
        "search": manifest["search"],
        "build_s": manifest["build_seconds"],
        "tune_s": manifest["tune_seconds"],
        "recall": recall,
        "scann_qps_1": qps(index, test_queries, 1, K),
        "brute_qps_1": qps(exact, test_queries[:200], 1, K),
        "scann_qps_256": qps(index, test_queries, 256, K),
        "brute_qps_256": qps(exact, test_queries, 256, K),
    }
    print(out, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated catalogue sizes")
    parser.add_argument("--dim", type=int, default=64, help="embedding dimension")
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument(
        "--noise", default="1,2,4", help="comma-separated spreads around each centre (centres are N(0, 1))"
    )
    args = parser.parse_args()
    rows = [
        run_size(int(n), args.dim, args.seed, float(noise))
        for n in args.sizes.split(",")
        for noise in args.noise.split(",")
    ]
    lines = [
        f"Synthetic embeddings, dim {args.dim}, sqrt(n) clusters with centres N(0, 1) and a spread around "
        "them: 1 = clear clusters, 2 = overlapping, 4 = almost no structure (the hard case for any ANN); index built and tuned by `build_index` "
        f"(target recall@{K} 0.95 on 1,000 tuning queries); recall and QPS on 1,000 other queries. "
        "Single-threaded callers; ScaNN and NumPy may use both cores inside one call.\n",
        "| items | spread | index | search settings | build + tune s | recall@10 | ScaNN QPS (1 query) | brute-force QPS (1 query) "
        "| ratio | ScaNN QPS (batch 256) | brute-force QPS (batch 256) | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        search = ", ".join(f"{k}={v}" for k, v in r["search"].items() if v is not None) or "-"
        lines.append(
            f"| {r['n']:,} | {r['noise']:g} | {r['kind']} | {search} | {r['build_s']:.1f} + {r['tune_s']:.1f} | {r['recall']:.4f} "
            f"| {r['scann_qps_1']:,.0f} | {r['brute_qps_1']:,.0f} | {r['scann_qps_1'] / r['brute_qps_1']:.1f} "
            f"| {r['scann_qps_256']:,.0f} | {r['brute_qps_256']:,.0f} | {r['scann_qps_256'] / r['brute_qps_256']:.1f} |"
        )
    write_section("index_qps", "ScaNN vs brute force (serving index)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
