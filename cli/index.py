"""`ntr index`: a ScaNN index over a trained variant's item embeddings -> WORKDIR/index/."""

from __future__ import annotations

import argparse
import os
import time

from ntr.retrieval.config import VARIANTS

HELP = (
    "Build a ScaNN index of a trained variant's items, tuned to a recall target against brute "
    "force on held-out queries (validation histories); writes scann/ and manifest.json."
)
KINDS = ("auto", "brute_force", "ah", "tree_ah")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", default="ntr", choices=sorted(VARIANTS), help="which trained variant")
    parser.add_argument("--model-dir", help="exported model (default WORKDIR/models/<variant>)")
    parser.add_argument("--data-dir", help="preprocessed data for held-out queries (default WORKDIR/data)")
    parser.add_argument("--index-dir", help="output (default WORKDIR/index)")
    parser.add_argument("--k", type=int, default=100, help="K of the recall target")
    parser.add_argument("--target-recall", type=float, default=0.95, help="recall@K to reach vs brute force")
    parser.add_argument("--queries", type=int, default=2000, help="held-out validation histories to tune on")
    parser.add_argument(
        "--kind", default="auto", choices=KINDS, help="searcher kind (auto: by catalogue size)"
    )
    parser.add_argument(
        "--tf-serving",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also write tf_serving/: a SavedModel with the index inside (history -> top-K ids)",
    )


def held_out_queries(model, data_dir: str, limit: int):
    """[n, dim] query embeddings of up to `limit` validation histories (non-empty queries only)."""
    import numpy as np  # noqa: PLC0415

    from ntr.retrieval.data import read_histories  # noqa: PLC0415

    histories = [model.known(h)[0] for h in read_histories(data_dir, "valid", limit)]
    batches = [model.encode(histories[i : i + 256]) for i in range(0, len(histories), 256)]
    queries = np.concatenate(batches) if batches else np.zeros((0, model.export["dim"]), np.float32)
    queries = queries[np.any(queries != 0, axis=1)]
    if len(queries) == 0:
        raise ValueError(
            f"no usable validation histories in {data_dir} to tune the index on; "
            "check that `ntr preprocess` wrote a valid split."
        )
    return queries


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ntr.retrieval.exported import ExportedModel  # noqa: PLC0415 (TF starts below)
    from ntr.serving.index import IndexConfig, build_index, choose_config, save_index  # noqa: PLC0415

    if args.k < 1 or args.queries < 1:
        raise ValueError("--k and --queries must be >= 1.")
    model_dir = args.model_dir or os.path.join(args.workdir, "models", args.variant)
    data_dir = args.data_dir or os.path.join(args.workdir, "data")
    index_dir = args.index_dir or os.path.join(args.workdir, "index")
    model = ExportedModel(model_dir)
    print(f"ntr index: {len(model.item_ids):,} items of variant {model.variant} from {model_dir}", flush=True)
    start = time.perf_counter()
    queries = held_out_queries(model, data_dir, args.queries)
    print(f"ntr index: {len(queries):,} held-out queries in {time.perf_counter() - start:.1f}s", flush=True)
    n = len(model.item_ids)
    if args.kind == "auto":
        config = choose_config(n)
    elif args.kind == "tree_ah":
        config = IndexConfig(kind="tree_ah", num_leaves=max(1, round(n**0.5)), training_sample_size=n)
    else:
        config = IndexConfig(kind=args.kind)
    index, manifest = build_index(
        model.embeddings,
        queries,
        k=args.k,
        target_recall=args.target_recall,
        config=config,
        log=lambda line: print(f"ntr index: {line}", flush=True),
    )
    manifest["model"] = {
        "variant": model.variant,
        "fingerprint": model.fingerprint,
        "vocab_hash": model.export["vocab_hash"],
        "model_dir": os.path.abspath(model_dir),
    }
    if args.tf_serving:
        from ntr.serving.tf_serving import export_with_index  # noqa: PLC0415

        info = export_with_index(model, os.path.join(index_dir, "tf_serving"), queries, k=args.k)
        manifest["tf_serving"] = info
        print(
            f"ntr index: tf_serving/ SavedModel with the index inside, "
            f"recall@{info['recall']['k']} {info['recall']['measured']:.4f}",
            flush=True,
        )
    save_index(index, manifest, index_dir)
    recall = manifest["recall"]
    print(
        f"ntr index: wrote {index_dir} ({manifest['config']['kind']}, recall@{recall['k']} "
        f"{recall['measured']:.4f} vs target {recall['target']}"
        f"{'' if recall['target_met'] else ' -- NOT met; see manifest.json recall.tried'})"
    )
    return 0
