"""Offline evaluation the logging policy does not bias: the random-exposure slice and off-policy
estimates of what the model's top K would get.

The logged test split is what the logging feed chose to show, so a model that ranks those items
the way the feed did looks good there, whatever users make of it. Two readings avoid that:

- **Random slice** (`is_random` exposures, shown uniformly at random): how the model orders the
  outcomes users gave to items nobody chose for them. `auc`: the target's log p of positive
  outcomes against skips and dislikes (explicit and implicit negatives). `ndcg`: per window, the
  random exposures ranked by their log p (each under its own history), positive = gain 1.
- **Off-policy estimates** (exposures with a logging `propensity`): the target policy shows one
  of the model's top K uniformly, `pi(item | history) = 1[rank < K] / K`. IPS, SNIPS and doubly
  robust estimates of its dislike rate, skip rate and watch seconds per exposure come from the
  Open Bandit Pipeline (`obp`), with bootstrap intervals. DR's reward model is each item's mean
  reward over the split, shrunk towards the split's mean by `prior_weight` pseudo-exposures.

Every figure comes with `n`, and is None where the split has no such exposures.
"""

from __future__ import annotations

import numpy as np

from ntr.pipelines.events import Label
from ntr.retrieval import metrics
from ntr.retrieval.evaluate import RankedTargets

REWARDS = ("dislike_rate", "skip_rate", "watch_seconds")
ESTIMATORS = ("ipw", "snipw", "dr")


def rewards(ranked: RankedTargets) -> dict[str, np.ndarray]:
    """Per target [q]: the outcomes the off-policy estimates average (unknown watch time: 0)."""
    watch = ranked.at_targets(ranked.row_watch_ms).astype(np.float64)
    return {
        "dislike_rate": (ranked.label == int(Label.EXPLICIT_NEGATIVE)).astype(np.float64),
        "skip_rate": (ranked.label == int(Label.IMPLICIT_NEGATIVE)).astype(np.float64),
        "watch_seconds": np.where(watch > 0, watch / 1000.0, 0.0),
    }


def random_slice(ranked: RankedTargets, k: int = 10) -> dict:
    """AUC and NDCG@k of the model on the random exposures (see module doc).

    Returns:
      {"n": random targets, "auc": {"mean", "se", "n"}, f"ndcg@{k}": {"mean", "se", "n"}}, the
      metrics None (n 0) when the split has no random exposures with both outcomes.
    """
    if ranked.row_is_random is None:
        raise ValueError("rank_targets(..., logging=True) keeps the logging columns this needs.")
    chosen = ranked.at_targets(ranked.row_is_random) == 1
    positive = chosen & (ranked.label == int(Label.POSITIVE))
    negative = chosen & np.isin(ranked.label, (int(Label.EXPLICIT_NEGATIVE), int(Label.IMPLICIT_NEGATIVE)))
    # Random targets grouped by window, each group best-first by log p (one sort, not a scan
    # of every target per window: a 10^6-item world has ~10^4 windows with random exposures).
    idx = np.flatnonzero(chosen)
    idx = idx[np.lexsort((-ranked.log_p[idx], ranked.row[idx]))]
    starts = np.flatnonzero(np.r_[True, ranked.row[idx][1:] != ranked.row[idx][:-1]])
    slates = []
    for group in np.split(idx, starts[1:]):
        if len(group) >= 2 and positive[group].any():
            slates.append(_ndcg(positive[group].astype(np.float64), k))
    return {
        "n": int(chosen.sum()),
        "auc": metrics.auc(ranked.log_p[positive], ranked.log_p[negative]),
        f"ndcg@{k}": metrics.mean_se(np.asarray(slates, np.float64)),
    }


def _ndcg(gains: np.ndarray, k: int) -> float:
    """NDCG@k of binary gains in ranked order."""
    discounts = 1.0 / np.log2(np.arange(2, len(gains) + 2))
    dcg = float((gains[:k] * discounts[:k]).sum())
    ideal = np.sort(gains)[::-1]
    return dcg / float((ideal[:k] * discounts[:k]).sum())


def target_policy(ranked: RankedTargets, k: int) -> np.ndarray:
    """[q] the probability that the model's policy (one of its top k, uniformly) shows the
    logged item: `1[rank < k] / k`."""
    return (ranked.rank < k) / float(k)


def item_means(items: np.ndarray, reward: np.ndarray, prior_weight: float) -> dict[int, float]:
    """Each item's mean reward, shrunk towards the overall mean by `prior_weight` exposures."""
    overall = float(reward.mean())
    sums = {}
    for item, value in zip(items.tolist(), reward.tolist(), strict=True):
        total, count = sums.get(item, (0.0, 0))
        sums[item] = (total + value, count + 1)
    return {
        item: (total + prior_weight * overall) / (count + prior_weight)
        for item, (total, count) in sums.items()
    }


def off_policy(
    ranked: RankedTargets, k: int = 10, bootstrap: int = 200, seed: int = 0, prior_weight: float = 5.0
) -> dict:
    """IPS / SNIPS / DR estimates of the model's top-k policy on the logged exposures.

    Args:
      ranked: from `rank_targets(..., logging=True)`.
      k: the policy shows one of the model's top k.
      bootstrap: resamples for the 95% intervals.
      seed: the bootstrap's seed.
      prior_weight: pseudo-exposures of the overall mean in DR's per-item reward model.

    Returns:
      {"n", "k", "effective_n" (of the importance weights), "logged" (each reward's mean under
      the logging policy), and per reward in REWARDS, per estimator in ESTIMATORS,
      {"mean", "ci95"}}; the estimates are None when no exposure has a propensity.
    """
    from obp.ope import (  # noqa: PLC0415
        DoublyRobust,
        InverseProbabilityWeighting,
        OffPolicyEvaluation,
        SelfNormalizedInverseProbabilityWeighting,
    )

    if ranked.row_propensity is None:
        raise ValueError("rank_targets(..., logging=True) keeps the logging columns this needs.")
    propensity = ranked.at_targets(ranked.row_propensity).astype(np.float64)
    known = propensity > 0
    out = {"n": int(known.sum()), "k": k}
    if not known.any():
        return dict(out, effective_n=None, logged=None, **{name: None for name in REWARDS})
    p, pi = propensity[known], target_policy(ranked, k)[known]
    weights = pi / p
    out["effective_n"] = float(weights.sum() ** 2 / max((weights**2).sum(), 1e-300))
    items, tops = ranked.item[known], ranked.top[known][:, :k]
    out["logged"] = {}
    for name, reward in rewards(ranked).items():
        r = reward[known]
        out["logged"][name] = float(r.mean())
        q_item = item_means(ranked.item, reward, prior_weight)
        overall = float(reward.mean())
        q_logged = np.array([q_item[i] for i in items.tolist()])
        q_top = np.vectorize(lambda i, q=q_item, m=overall: q.get(i, m), otypes=[np.float64])(tops)  # [n, k]
        # Two actions per exposure: 0 = the logged item, 1 = the rest of the policy's mass (its
        # other top-k items), so obp's arrays stay [n, 2, 1] whatever the catalogue's size.
        rest = np.clip(1.0 - pi, 0.0, 1.0)
        rest_value = q_top.sum(axis=1) / k - pi * q_logged
        action_dist = np.stack([pi, rest], axis=1)[:, :, None]
        q_hat = np.stack([q_logged, np.where(rest > 0, rest_value / np.maximum(rest, 1e-12), 0.0)], axis=1)
        feedback = {
            "n_rounds": len(r),
            "action": np.zeros(len(r), np.int64),
            "reward": r,
            "pscore": p,
            "position": None,
        }
        ope = OffPolicyEvaluation(
            bandit_feedback=feedback,
            ope_estimators=[
                InverseProbabilityWeighting(),
                SelfNormalizedInverseProbabilityWeighting(),
                DoublyRobust(),
            ],
        )
        intervals = ope.estimate_intervals(
            action_dist=action_dist,
            estimated_rewards_by_reg_model=q_hat[:, :, None],
            n_bootstrap_samples=bootstrap,
            random_state=seed,
        )
        values = ope.estimate_policy_values(
            action_dist=action_dist, estimated_rewards_by_reg_model=q_hat[:, :, None]
        )
        out[name] = {
            estimator: {
                "mean": float(values[estimator]),
                "ci95": [
                    float(intervals[estimator]["95.0% CI (lower)"]),
                    float(intervals[estimator]["95.0% CI (upper)"]),
                ],
            }
            for estimator in ESTIMATORS
        }
    return out
