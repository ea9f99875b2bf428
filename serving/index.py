"""ScaNN index: a config chosen from the catalogue size, tuned to a recall target, saved with a
manifest that ties it to the model it was built from.

Rules (DESIGN.md "Serving"): below 20k items exact brute force; below 100k asymmetric hashing
(AH) + exact reordering; above, a k-means tree with ~sqrt(n) leaves + AH + reordering. The
search-time knobs (leaves to search, candidates to reorder) are then tuned on held-out
queries to the cheapest setting whose recall@K against exact brute force reaches the target.

Layout of an index directory: scann/ (the serialized searcher) and manifest.json.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable

import numpy as np

from ntr.serving.topk import BruteForce, ScaNN, SearchParams

BRUTE_FORCE_MAX_ITEMS = 20_000
AH_MAX_ITEMS = 100_000
MANIFEST = "manifest.json"


class IndexMismatch(ValueError):
    """The index was built from another model (fingerprint or vocab hash differ)."""


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    """How the searcher is built.

    Attributes:
      kind: "brute_force", "ah" (hashing + reorder) or "tree_ah" (tree + hashing + reorder).
      num_leaves: k-means leaves (tree_ah only).
      dims_per_block: AH sub-space size; 2 is ScaNN's recommended default.
      anisotropic_quantization_threshold: AH's anisotropic loss threshold (0.2 for dot product).
      training_sample_size: points used to train the tree (tree_ah only).
      seed: not used by ScaNN's builder (it is deterministic given the data), kept so the
        manifest records everything that went in.
    """

    kind: str
    num_leaves: int | None = None
    dims_per_block: int = 2
    anisotropic_quantization_threshold: float = 0.2
    training_sample_size: int | None = None
    seed: int = 0


def choose_config(num_items: int) -> IndexConfig:
    """The DESIGN.md rule: brute force / AH / tree + AH by catalogue size."""
    if num_items < BRUTE_FORCE_MAX_ITEMS:
        return IndexConfig(kind="brute_force")
    if num_items < AH_MAX_ITEMS:
        return IndexConfig(kind="ah")
    leaves = int(round(math.sqrt(num_items)))
    return IndexConfig(kind="tree_ah", num_leaves=leaves, training_sample_size=min(num_items, 250_000))


def build_searcher(embeddings: np.ndarray, config: IndexConfig, k: int):
    """Builds a `scann_ops_pybind` searcher for `embeddings` [num_items, dim] float32."""
    from scann.scann_ops.py import scann_ops_pybind  # noqa: PLC0415 (heavy; only when building)

    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    builder = scann_ops_pybind.builder(embeddings, k, "dot_product")
    if config.kind == "brute_force":
        return builder.score_brute_force().build()
    if config.kind == "tree_ah":
        builder = builder.tree(
            num_leaves=config.num_leaves,
            num_leaves_to_search=max(1, config.num_leaves // 10),
            training_sample_size=config.training_sample_size,
        )
    elif config.kind != "ah":
        raise ValueError(f"unknown index kind {config.kind!r}; use brute_force, ah or tree_ah.")
    threshold = config.anisotropic_quantization_threshold
    return (
        builder.score_ah(config.dims_per_block, anisotropic_quantization_threshold=threshold)
        .reorder(max(k, 4 * k))
        .build()
    )


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of |found ∩ exact| / k, for index arrays [batch, k]."""
    if found.shape != exact.shape:
        raise ValueError(f"shapes differ: {found.shape} vs {exact.shape}")
    k = exact.shape[1]
    hits = [len(np.intersect1d(f, e, assume_unique=True)) for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits) / k) if hits else float("nan")


def candidate_params(config: IndexConfig, k: int, num_items: int) -> list[SearchParams]:
    """Search settings to try, cheapest first (for tree: fewest leaves, then fewest reorders)."""
    if config.kind == "brute_force":
        return [SearchParams()]
    reorders = sorted({min(num_items, k * m) for m in (1, 2, 4, 8, 16, 32, 64, 128)})
    if config.kind == "ah":
        return [SearchParams(pre_reorder_num_neighbors=r) for r in reorders]
    leaves = sorted(
        {
            max(1, min(config.num_leaves, int(round(config.num_leaves * f))))
            for f in (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 1.0)
        }
    )
    # Cost ~ items scanned + items re-scored exactly.
    grid = [SearchParams(leaves_to_search=lv, pre_reorder_num_neighbors=r) for lv in leaves for r in reorders]
    return sorted(
        grid,
        key=lambda p: p.leaves_to_search / config.num_leaves * num_items + 8 * p.pre_reorder_num_neighbors,
    )


@dataclasses.dataclass(frozen=True)
class TuneResult:
    params: SearchParams
    recall: float
    target_met: bool
    tried: list[dict]


def tune(
    index: ScaNN, queries: np.ndarray, exact: np.ndarray, config: IndexConfig, target: float
) -> TuneResult:
    """The cheapest search setting whose recall@k (k = exact.shape[1]) reaches `target`.

    When none does, the setting with the best recall, with `target_met=False`.
    """
    k = exact.shape[1]
    tried, best = [], None
    for params in candidate_params(config, k, index.num_items):
        index.params = params
        recall = recall_at_k(index.search(queries, k)[1], exact)
        tried.append({**dataclasses.asdict(params), "recall": recall})
        if best is None or recall > best[1]:
            best = (params, recall)
        if recall >= target:
            index.params = params
            return TuneResult(params, recall, True, tried)
    index.params = best[0]
    return TuneResult(best[0], best[1], False, tried)


def build_index(
    embeddings: np.ndarray,
    queries: np.ndarray,
    *,
    k: int = 100,
    target_recall: float = 0.95,
    config: IndexConfig | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[ScaNN, dict]:
    """Builds and tunes an index.

    Args:
      embeddings: [num_items, dim] item embeddings.
      queries: [num_queries, dim] held-out query embeddings to tune on.
      k: the K of the recall target (clipped to the catalogue size).
      target_recall: recall@K against exact brute force to reach.
      config: build config; default `choose_config(num_items)`.
      log: receives one line per stage (progress on long builds).

    Returns:
      The tuned index and its manifest fields (config, search params, measured recall, timings).
    """
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) == 0:
        raise ValueError(f"embeddings must be a non-empty [num_items, dim] array, got {embeddings.shape}.")
    queries = np.asarray(queries, dtype=np.float32)
    if len(queries) == 0:
        raise ValueError("need at least one held-out query to measure recall against brute force.")
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}.")
    num_items, dim = embeddings.shape
    k = min(k, num_items)
    config = config or choose_config(num_items)
    log(f"building a {config.kind} ScaNN searcher over {num_items:,} items (dim {dim})")
    start = time.perf_counter()
    index = ScaNN(build_searcher(embeddings, config, k), num_items, dim, num_leaves=config.num_leaves)
    build_seconds = time.perf_counter() - start
    log(f"built in {build_seconds:.1f}s; exact top-{k} of {len(queries):,} queries for tuning")
    exact = BruteForce(embeddings).search(queries, k)[1]
    start = time.perf_counter()
    result = tune(index, queries, exact, config, target_recall)
    log(
        f"recall@{k} {result.recall:.4f} with {dataclasses.asdict(result.params)} "
        f"(target {target_recall}{'' if result.target_met else ', NOT met'})"
    )
    manifest = {
        "config": dataclasses.asdict(config),
        "search": dataclasses.asdict(result.params),
        "recall": {
            "k": k,
            "target": target_recall,
            "measured": result.recall,
            "target_met": result.target_met,
            "num_queries": len(queries),
            "tried": result.tried,
        },
        "num_items": num_items,
        "dim": dim,
        "build_seconds": build_seconds,
        "tune_seconds": time.perf_counter() - start,
    }
    return index, manifest


def save_index(index: ScaNN, manifest: dict, index_dir: str) -> None:
    """Writes scann/ and manifest.json; replaces an older index only once the new one is whole."""
    os.makedirs(index_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".scann-", dir=index_dir)
    index.searcher.serialize(staging)
    target = os.path.join(index_dir, "scann")
    if os.path.exists(target):
        shutil.rmtree(target)
    os.replace(staging, target)
    manifest = {**manifest, "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    with open(os.path.join(index_dir, MANIFEST), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)


def read_manifest(index_dir: str) -> dict:
    path = os.path.join(index_dir, MANIFEST)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no index at {index_dir} ({MANIFEST} missing); build one with `ntr index`.")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def check_manifest(manifest: dict, model_export: dict, index_dir: str) -> None:
    """Refuses an index built from another model than the one `model_export` describes.

    Args:
      manifest: the index's manifest.json.
      model_export: the model's config.json["export"] (fingerprint, vocab_hash, ...).
    """
    for field in ("fingerprint", "vocab_hash"):
        built, expected = manifest.get("model", {}).get(field), model_export.get(field)
        if built != expected:
            raise IndexMismatch(
                f"the index at {index_dir} was built from a model with {field} {str(built)[:12]}..., "
                f"but the model has {str(expected)[:12]}...; rebuild it with "
                f"`ntr index --variant {manifest.get('model', {}).get('variant', '<variant>')}` "
                "after (re)training, or point --index-dir at the index of this model."
            )


_ASSET_PATH = re.compile(r'asset_path: "([^"]*)"')


def load_searcher(directory: str):
    """`scann_ops_pybind.load_searcher` for a directory that may have moved since it was saved.

    ScaNN writes absolute asset paths into scann_assets.pbtxt, so a copied or renamed index
    would fail to load; the paths are pointed at `directory` before loading.
    """
    from scann.scann_ops.py import scann_ops_pybind  # noqa: PLC0415

    directory = os.path.abspath(directory)
    assets = os.path.join(directory, "scann_assets.pbtxt")
    if not os.path.exists(assets):
        raise FileNotFoundError(f"{assets} is missing; rebuild the index with `ntr index`.")
    with open(assets, encoding="utf-8") as handle:
        text = handle.read()
    text = _ASSET_PATH.sub(
        lambda m: f'asset_path: "{os.path.join(directory, os.path.basename(m.group(1)))}"', text
    )
    return scann_ops_pybind.ScannSearcher(scann_ops_pybind.scann_pybind.ScannNumpy(directory, text), None)


def load_index(index_dir: str, model_export: dict | None = None) -> tuple[ScaNN, dict]:
    """Loads scann/ with its tuned search params; checks it against `model_export` when given."""
    manifest = read_manifest(index_dir)
    if model_export is not None:
        check_manifest(manifest, model_export, index_dir)
    searcher = load_searcher(os.path.join(index_dir, "scann"))
    params = SearchParams(**manifest["search"])
    leaves = manifest["config"].get("num_leaves")
    return ScaNN(searcher, manifest["num_items"], manifest["dim"], params, leaves), manifest
