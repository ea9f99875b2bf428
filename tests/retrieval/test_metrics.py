"""Ranking metrics against plain NumPy / Python oracles."""

import math

import numpy as np
import pytest

from ntr.retrieval import metrics


def test_hit_and_ndcg_against_loop_oracle():
    rng = np.random.default_rng(0)
    rank = rng.integers(0, 30, 500)
    for k in (1, 5, 10):
        hit_oracle = [1.0 if r < k else 0.0 for r in rank]
        ndcg_oracle = [1.0 / math.log2(r + 2) if r < k else 0.0 for r in rank]
        np.testing.assert_allclose(metrics.hit_at_k(rank, k), hit_oracle)
        np.testing.assert_allclose(metrics.ndcg_at_k(rank, k), ndcg_oracle)
    assert metrics.ndcg_at_k(np.array([0, 1, 10]), 10).tolist() == pytest.approx([1.0, 1 / math.log2(3), 0.0])


def test_mean_se():
    out = metrics.mean_se(np.array([1.0, 2.0, 3.0, 6.0]))
    assert out["mean"] == 3.0 and out["n"] == 4
    assert out["se"] == pytest.approx(math.sqrt(14 / 3) / 2)  # std(ddof=1) = sqrt(14/3)
    assert metrics.mean_se(np.array([])) == {"mean": None, "se": None, "n": 0}
    assert metrics.mean_se(np.array([0.5]))["se"] is None


def test_auc_against_pairwise_oracle_with_ties():
    rng = np.random.default_rng(1)
    pos = rng.integers(0, 10, 70).astype(float)
    neg = rng.integers(0, 8, 50).astype(float)
    oracle = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg])
    out = metrics.auc(pos, neg)
    assert out["mean"] == pytest.approx(oracle) and out["n"] == 70 * 50
    a, n1, n2 = oracle, 70, 50
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))
    assert out["se"] == pytest.approx(se)
    assert metrics.auc(np.array([3.0, 4.0]), np.array([1.0, 2.0]))["mean"] == 1.0
    assert metrics.auc(np.array([1.0]), np.array([]))["mean"] is None


def test_future_negative_hits_against_loop_oracle():
    rng = np.random.default_rng(2)
    rows, length, q, k = 6, 12, 40, 3
    row_items = rng.integers(2, 15, (rows, length))
    row_labels = rng.integers(0, 4, (rows, length))
    row_ts = np.sort(rng.integers(0, 100, (rows, length)), axis=1)
    row = rng.integers(0, rows, q)
    position = rng.integers(0, length, q)
    top = rng.integers(2, 15, (q, 5))
    hit, has = metrics.future_negative_hits(top, row, position, row_items, row_labels, row_ts, 2, 30, k)
    for i in range(q):
        r, t = row[i], position[i]
        future = {
            row_items[r, s]
            for s in range(t, length)
            if row_labels[r, s] == 2 and row_ts[r, s] - row_ts[r, t] <= 30
        }
        assert has[i] == bool(future)
        assert hit[i] == float(bool(future & set(top[i, :k].tolist())))
    assert has.any() and hit.any() and not hit.all()


def test_after_dislike_slice_by_hand():
    after_dislike = metrics.after_dislike
    neg, pos = 3, 1
    # tokens: 2..5 items; creators: item 2 -> 10, 3 -> 10, 4 -> 11, 5 -> 12; categories below.
    item_creator = np.array([0, 0, 10, 10, 11, 12])
    item_categories = np.array([[0, 0], [0, 0], [20, 0], [21, 0], [21, 22], [23, 0]])
    row_items = np.array([[2, 3, 4, 5, 3], [5, 2, 3, 4, 0]])
    row_labels = np.array([[neg, pos, pos, pos, pos], [pos, pos, neg, pos, 0]])
    row = np.array([0, 0, 0, 0, 1, 1])
    position = np.array([1, 2, 3, 4, 3, 1])
    target = row_items[row, position]
    got = after_dislike(
        row_items, row_labels, row, position, target, item_creator, item_categories, neg, window=20
    )
    # row 0: dislike of item 2 (creator 10, category 20) at 0: item 3 shares the creator, 4 and 5
    # share nothing. Row 1: dislike of 3 (creator 10, category 21) at 2: item 4 shares category
    # 21; the target at 1 comes before the dislike.
    assert got.tolist() == [True, False, False, True, True, False]
    # A window of 2 events: the dislike at 0 is too far back for the target at 4.
    short = after_dislike(
        row_items, row_labels, row, position, target, item_creator, item_categories, neg, window=2
    )
    assert short.tolist() == [True, False, False, False, True, False]
