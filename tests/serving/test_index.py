"""TopK implementations against a NumPy oracle; index config, tuning, save/load and manifest checks."""

import json
import os
import shutil

import numpy as np
import pytest

from ntr.serving.index import (
    IndexConfig,
    IndexMismatch,
    build_index,
    check_manifest,
    choose_config,
    load_index,
    recall_at_k,
    save_index,
)
from ntr.serving.topk import BruteForce, ScaNN, SearchParams


def oracle_top_k(queries, embeddings, k):
    """Exact top k by score, ties broken by the smaller index: a full sort, no partitioning."""
    scores = queries @ embeddings.T
    order = np.array([sorted(range(len(row)), key=lambda j, r=row: (-r[j], j))[:k] for row in scores])
    return np.take_along_axis(scores, order, 1), order


def clustered(rng, n, dim, clusters=64, noise=0.4):
    """Points around `clusters` centres: ANN-friendly structure like real item embeddings."""
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    return (centres[rng.integers(0, clusters, n)] + noise * rng.normal(size=(n, dim))).astype(np.float32)


def test_brute_force_matches_the_oracle_including_ties():
    rng = np.random.default_rng(0)
    embeddings = rng.integers(-2, 3, size=(300, 4)).astype(np.float32)  # small ints: many ties
    queries = rng.integers(-2, 3, size=(7, 4)).astype(np.float32)
    for k in (1, 5, 300):
        scores, indices = BruteForce(embeddings).search(queries, k)
        want_scores, want_indices = oracle_top_k(queries, embeddings, k)
        np.testing.assert_array_equal(indices, want_indices)
        np.testing.assert_array_equal(scores, want_scores)


def test_scann_configured_as_brute_force_equals_the_oracle():
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(2000, 16)).astype(np.float32)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    index, manifest = build_index(embeddings, queries, k=20, config=IndexConfig(kind="brute_force"))
    scores, indices = index.search(queries, 20)
    want_scores, want_indices = oracle_top_k(queries, embeddings, 20)
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
    assert manifest["recall"]["measured"] == 1.0 and manifest["recall"]["target_met"]


def test_search_rejects_bad_shapes_and_k():
    index = BruteForce(np.zeros((10, 4), np.float32))
    with pytest.raises(ValueError, match=r"queries must be \[batch, 4\]"):
        index.search(np.zeros((2, 3)), 1)
    with pytest.raises(ValueError, match=r"k must be in \[1, 10\]"):
        index.search(np.zeros((2, 4)), 11)


def test_config_follows_the_catalogue_size_rule():
    assert choose_config(19_999).kind == "brute_force"
    assert choose_config(20_000).kind == "ah"
    assert choose_config(99_999).kind == "ah"
    big = choose_config(1_000_000)
    assert big.kind == "tree_ah" and big.num_leaves == 1000


def test_recall_at_k_by_hand():
    found = np.array([[1, 2, 3], [4, 5, 6]])
    exact = np.array([[3, 2, 9], [7, 8, 9]])
    # Query 1 finds 2 of its 3, query 2 none: (2/3 + 0) / 2.
    assert recall_at_k(found, exact) == pytest.approx(1 / 3)


@pytest.mark.parametrize("kind", ["tree_ah", "ah"])
def test_tuned_index_reaches_its_recall_target(kind):
    rng = np.random.default_rng(2)
    embeddings = clustered(rng, 20_000, 16)
    queries = clustered(np.random.default_rng(3), 300, 16)
    config = (
        IndexConfig(kind="tree_ah", num_leaves=141, training_sample_size=20_000)
        if kind == "tree_ah"
        else None
    )
    index, manifest = build_index(embeddings, queries, k=10, target_recall=0.95, config=config)
    assert manifest["config"]["kind"] == kind
    assert manifest["recall"]["target_met"]
    # Re-measure independently on fresh queries from the same distribution.
    fresh = clustered(np.random.default_rng(4), 300, 16)
    recall = recall_at_k(index.search(fresh, 10)[1], oracle_top_k(fresh, embeddings, 10)[1])
    assert recall >= 0.93, recall
    # Tuning stopped at the first setting that met the target, not at an exhaustive one.
    assert manifest["recall"]["tried"][-1]["recall"] >= 0.95
    assert all(t["recall"] < 0.95 for t in manifest["recall"]["tried"][:-1])


def test_save_load_round_trip_survives_moving_the_folder(tmp_path):
    rng = np.random.default_rng(5)
    embeddings = clustered(rng, 20_000, 8)
    queries = clustered(rng, 100, 8)
    index, manifest = build_index(embeddings, queries, k=10, config=IndexConfig(kind="ah"))
    manifest["model"] = {"fingerprint": "f" * 64, "vocab_hash": "v" * 64, "variant": "ntr"}
    save_index(index, manifest, str(tmp_path / "index"))
    shutil.move(str(tmp_path / "index"), str(tmp_path / "moved"))  # ScaNN writes absolute paths
    loaded, loaded_manifest = load_index(
        str(tmp_path / "moved"), {"fingerprint": "f" * 64, "vocab_hash": "v" * 64}
    )
    assert loaded.params == index.params
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], index.search(queries, 10)[1])
    assert loaded_manifest["recall"] == json.loads(json.dumps(manifest["recall"]))
    assert sorted(os.listdir(tmp_path / "moved")) == ["manifest.json", "scann"]
    with pytest.raises(IndexMismatch, match="rebuild it with `ntr index --variant ntr`"):
        load_index(str(tmp_path / "moved"), {"fingerprint": "0" * 64, "vocab_hash": "v" * 64})


def test_manifest_mismatch_is_refused_with_a_fix():
    manifest = {"model": {"fingerprint": "a" * 64, "vocab_hash": "b" * 64, "variant": "group_ntr"}}
    check_manifest(manifest, {"fingerprint": "a" * 64, "vocab_hash": "b" * 64}, "idx")
    with pytest.raises(IndexMismatch, match="fingerprint.*ntr index --variant group_ntr"):
        check_manifest(manifest, {"fingerprint": "c" * 64, "vocab_hash": "b" * 64}, "idx")
    with pytest.raises(IndexMismatch, match="vocab_hash"):
        check_manifest(manifest, {"fingerprint": "a" * 64, "vocab_hash": "d" * 64}, "idx")


def test_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="ntr index"):
        load_index(str(tmp_path))


def test_scann_reorders_at_least_k():
    rng = np.random.default_rng(6)
    embeddings = clustered(rng, 20_000, 8)
    index, _ = build_index(embeddings, embeddings[:20], k=10, config=IndexConfig(kind="ah"))
    index.params = SearchParams(pre_reorder_num_neighbors=5)
    scores, indices = index.search(embeddings[:3], 40)
    assert indices.shape == (3, 40) and len(set(indices[0])) == 40
    assert isinstance(index, ScaNN)


def test_tree_search_wider_than_its_probed_leaves_returns_k_real_neighbours():
    """ScaNN pads a result its probed leaves cannot fill with row 0 and a NaN score; a filtered
    request asks for that many when a dislike excludes the query's neighbourhood."""
    rng = np.random.default_rng(7)
    embeddings = clustered(rng, 20_000, 8)
    config = IndexConfig(kind="tree_ah", num_leaves=141, training_sample_size=20_000)
    index, _ = build_index(embeddings, embeddings[:20], k=10, config=config)
    index.params = SearchParams(leaves_to_search=2, pre_reorder_num_neighbors=40)  # ~280 points
    queries = embeddings[:3]
    scores, indices = index.search(queries, 5_000)
    assert not np.isnan(scores).any()
    assert all(len(set(row)) == 5_000 for row in indices)
    # The scores are the items' dot products (exactly reordered), best first.
    np.testing.assert_allclose(
        scores, np.einsum("qd,qkd->qk", queries, embeddings[indices]), rtol=1e-5, atol=1e-5
    )
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    # Without the leaf count the shortfall is an error that says what to do, never padding.
    blind = ScaNN(index.searcher, index.num_items, index.dim, index.params)
    with pytest.raises(RuntimeError, match="num_leaves"):
        blind.search(queries, 5_000)
