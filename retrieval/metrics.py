"""Ranking metrics on full-corpus ranks (NumPy), each reported as mean ± standard error.

Every target event has one item, so Recall@K of a query equals its hit rate: 1 when the target
is among the top K, else 0. Ranks are 0-based (0 = ranked first).
"""

from __future__ import annotations

import math

import numpy as np


def hit_at_k(rank: np.ndarray, k: int) -> np.ndarray:
    """[n] float: 1.0 where rank < k."""
    return (np.asarray(rank) < k).astype(np.float64)


def ndcg_at_k(rank: np.ndarray, k: int) -> np.ndarray:
    """[n] float: 1 / log2(rank + 2) where rank < k, else 0 (one relevant item per query)."""
    rank = np.asarray(rank, np.float64)
    return np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)


def mean_se(values: np.ndarray) -> dict:
    """{"mean", "se", "n"}: the sample mean and its standard error std(ddof=1) / sqrt(n).

    With no values mean and se are None; with one value se is None.
    """
    values = np.asarray(values, np.float64)
    n = int(values.size)
    if n == 0:
        return {"mean": None, "se": None, "n": 0}
    se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return {"mean": float(values.mean()), "se": se, "n": n}


def auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> dict:
    """AUC = P(score of a positive > score of a negative), ties counting 1/2 (Mann-Whitney U).

    The standard error is Hanley & McNeil's (1982). Returns {"mean", "se", "n"} with n the
    number of (positive, negative) pairs; None when either side is empty.
    """
    pos = np.asarray(positive_scores, np.float64)
    neg = np.asarray(negative_scores, np.float64)
    n1, n2 = pos.size, neg.size
    if n1 == 0 or n2 == 0:
        return {"mean": None, "se": None, "n": 0}
    both = np.concatenate([pos, neg])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(both.size, np.float64)
    ranks[order] = np.arange(1, both.size + 1)
    # Average ranks over ties.
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = sums[inverse] / counts[inverse]
    a = (ranks[:n1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n2)
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2)
    return {"mean": float(a), "se": float(math.sqrt(max(var, 0.0))), "n": int(n1 * n2)}


def future_negative_hits(
    top: np.ndarray,
    row: np.ndarray,
    position: np.ndarray,
    row_items: np.ndarray,
    row_labels: np.ndarray,
    row_timestamps: np.ndarray,
    negative_label: int,
    window_s: int,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """FHR@k inputs: does the top k of a query hold any negative the user gives in the window?

    For the query of the target at (row, position), the future set is every event of that row
    at a position >= the target's with label `negative_label` and a timestamp at most
    `window_s` seconds after the target's.

    Args:
      top: [q, >= k] item tokens ranked for each query.
      row, position: [q] the query's target event.
      row_items, row_labels, row_timestamps: [rows, seq_len] the windows' events.
      negative_label: the label that counts (explicit negative).
      window_s: the window after the target's timestamp, seconds.
      k: cut-off.

    Returns:
      (hit [q] float, has_future [q] bool); FHR@k is hit[has_future].mean().
    """
    items = row_items[row]  # [q, seq_len]
    stamps = row_timestamps[row]
    seq = np.arange(row_items.shape[1])[np.newaxis, :]
    start = stamps[np.arange(len(row)), position][:, np.newaxis]
    future = (
        (seq >= position[:, np.newaxis]) & (row_labels[row] == negative_label) & (stamps - start <= window_s)
    )
    in_top = (items[:, :, np.newaxis] == top[:, np.newaxis, :k]).any(axis=2)
    return (future & in_top).any(axis=1).astype(np.float64), future.any(axis=1)


def after_dislike(
    row_items: np.ndarray,
    row_labels: np.ndarray,
    row: np.ndarray,
    position: np.ndarray,
    target_item: np.ndarray,
    item_creator: np.ndarray,
    item_categories: np.ndarray,
    negative_label: int,
    window: int = 20,
) -> np.ndarray:
    """[q] bool: targets that come within `window` events after an explicit negative on an item
    sharing the target's creator or one of its categories (the after-dislike slice).

    Args:
      row_items, row_labels: [rows, seq_len] item tokens and labels of the windows.
      row, position: [q] each target's window and position in it.
      target_item: [q] each target's item token.
      item_creator: [num_tokens] creator token per item token (0 padding, 1 unknown: none).
      item_categories: [num_tokens, c] category tokens per item token (0, 1: none).
      negative_label: the label value of explicit negatives.
      window: how many events back a dislike still counts.
    """
    out = np.zeros(len(row), bool)
    creator_of = np.asarray(item_creator)
    categories_of = np.asarray(item_categories)
    for q, (r, p, item) in enumerate(zip(row, position, target_item, strict=True)):
        start = max(0, int(p) - window)
        sources = row_items[r, start:p][row_labels[r, start:p] == negative_label]
        if not len(sources):
            continue
        creator = creator_of[item]
        same_creator = (creator > 1) & (creator_of[sources] == creator)
        mine = categories_of[item][categories_of[item] > 1]
        same_category = np.isin(categories_of[sources], mine).any(axis=1) if len(mine) else False
        out[q] = bool(np.any(same_creator | same_category))
    return out
