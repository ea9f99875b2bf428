"""When a predicted reason may remove a whole creator or category: the confidence threshold.

A reason of creator or category granularity makes the Recommender drop every item of that
creator or category. When the reason was predicted rather than stated, a wrong prediction
removes something the user did not object to (a liked creator, a topic they watch). The
threshold is the smallest confidence at which, on validation dislikes whose reason the user
stated, predicted group reasons are right (same granularity as the stated reason) at least
`target_precision` of the time. Below it, only the disliked item goes.
"""

from __future__ import annotations

import numpy as np

from ntr.pipelines.events import REASON_GRANULARITY, REASONS, Granularity

# A threshold no probability reaches: group removals never follow a prediction.
NEVER = 1.01


def group_granularity(reasons: np.ndarray) -> np.ndarray:
    """[n] int reason indices -> [n] granularity names ("item", "creator" or "category")."""
    names = np.array([REASON_GRANULARITY.get(r, Granularity.ITEM).value for r in REASONS], object)
    return names[np.asarray(reasons, np.int64)]


def removal_stats(confidence: np.ndarray, predicted: np.ndarray, truth: np.ndarray, threshold: float) -> dict:
    """What acting on predictions at `threshold` does, against the true reasons.

    Args:
      confidence: [n] the predicted reason's probability.
      predicted / truth: [n] reason indices into REASONS.
      threshold: group removals follow predictions with confidence >= threshold.

    Returns:
      removals (predictions acted on at group level), precision (share of them whose true
      reason has that granularity), wrong (removals of a group the user did not object to, per
      dislike), recall (share of group-reason dislikes whose group is removed).
    """
    predicted_group, true_group = group_granularity(predicted), group_granularity(truth)
    acted = (predicted_group != "item") & (np.asarray(confidence) >= threshold)
    right = acted & (predicted_group == true_group)
    wanted = true_group != "item"
    n = len(truth)
    return {
        "removals": int(acted.sum()),
        "precision": float(right.sum() / acted.sum()) if acted.any() else None,
        "wrong_per_dislike": float((acted & ~right).sum() / n) if n else None,
        "recall": float((right & wanted).sum() / wanted.sum()) if wanted.any() else None,
        "n": int(n),
    }


def choose_threshold(
    confidence: np.ndarray,
    predicted: np.ndarray,
    truth: np.ndarray,
    target_precision: float = 0.9,
    min_removals: int = 20,
) -> dict:
    """The smallest confidence threshold whose group removals reach `target_precision`.

    Candidates are the observed confidences of group-granularity predictions; a candidate
    counts only when at least `min_removals` predictions clear it (a precision of 1.0 on two
    removals says nothing). When none qualifies the threshold is `NEVER` (items only).

    Args:
      confidence / predicted / truth: as in `removal_stats`, on validation dislikes whose
        reason was stated.
      target_precision: the share of group removals that must be right.
      min_removals: the least support a threshold needs.

    Returns:
      {"threshold", "target_precision", "min_removals"} and `removal_stats` at that threshold.
    """
    confidence, predicted, truth = (np.asarray(a) for a in (confidence, predicted, truth))
    chosen = NEVER
    group = group_granularity(predicted) != "item"
    for candidate in np.unique(confidence[group]):
        stats = removal_stats(confidence, predicted, truth, float(candidate))
        if stats["removals"] >= min_removals and stats["precision"] >= target_precision:
            chosen = float(candidate)
            break
    return {
        "threshold": chosen,
        "target_precision": target_precision,
        "min_removals": min_removals,
        **removal_stats(confidence, predicted, truth, chosen),
    }
