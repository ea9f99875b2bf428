"""Random-slice metrics and off-policy estimates against figures computed by hand."""

import math

import numpy as np
import pytest

from ntr.pipelines.events import Label
from ntr.retrieval.evaluate import RankedTargets
from ntr.retrieval.offline import off_policy, random_slice, target_policy

POS, EXP, IMP = int(Label.POSITIVE), int(Label.EXPLICIT_NEGATIVE), int(Label.IMPLICIT_NEGATIVE)


def ranked(propensity=(0.25, 0.5, 0.1, 0.5)):
    """Four logged exposures, targets at positions 1 and 2 of two windows (rows 0 and 1).

    t0: item 10, disliked, rank 0, propensity 0.25, random, log p -1, watched 2 s (row 0, pos 1)
    t1: item 11, skipped, rank 5, propensity 0.5, logged by the feed (row 1, pos 1)
    t2: item 12, positive, rank 1, propensity 0.1, random, log p -2, watched 10 s (row 0, pos 2)
    t3: item 13, disliked, rank 0, propensity 0.5, random, log p -3, watched 4 s (row 1, pos 2)
    """
    row_watch = np.array([[0, 2000, 10000], [0, -1, 4000]])
    row_random = np.array([[0, 1, 1], [0, 0, 1]])
    row_p = np.full((2, 3), -1.0)
    row_p[[0, 1, 0, 1], [1, 1, 2, 2]] = propensity
    return RankedTargets(
        label=np.array([EXP, IMP, POS, EXP]),
        reason=np.zeros(4, np.int64),
        item=np.array([10, 11, 12, 13]),
        rank=np.array([0, 5, 1, 0]),
        log_p=np.array([-1.0, -0.5, -2.0, -3.0]),
        top=np.array([[10, 12], [12, 13], [99, 12], [13, 10]]),
        row=np.array([0, 1, 0, 1]),
        position=np.array([1, 1, 2, 2]),
        row_items=np.zeros((2, 3), np.int64),
        row_labels=np.zeros((2, 3), np.int64),
        row_timestamps=np.zeros((2, 3), np.int64),
        row_watch_ms=row_watch,
        row_is_random=row_random,
        row_propensity=row_p,
    )


def test_target_policy_is_uniform_over_the_top_k():
    np.testing.assert_allclose(target_policy(ranked(), 2), [0.5, 0.0, 0.5, 0.5])


def test_ips_snips_and_dr_by_hand():
    out = off_policy(ranked(), k=2, bootstrap=50, prior_weight=0.0)
    # Importance weights pi / p: 0.5/0.25 = 2, 0/0.5 = 0, 0.5/0.1 = 5, 0.5/0.5 = 1 (sum 8).
    dislike, watch, skip = out["dislike_rate"], out["watch_seconds"], out["skip_rate"]
    assert dislike["ipw"]["mean"] == pytest.approx((2 * 1 + 0 + 5 * 0 + 1 * 1) / 4)  # 0.75
    assert dislike["snipw"]["mean"] == pytest.approx(3 / 8)
    assert watch["ipw"]["mean"] == pytest.approx((2 * 2 + 0 + 5 * 10 + 1 * 4) / 4)  # 14.5
    assert watch["snipw"]["mean"] == pytest.approx(58 / 8)
    assert skip["ipw"]["mean"] == 0.0 and skip["snipw"]["mean"] == 0.0  # the skip has weight 0
    # DR with each item's own mean as the reward model (prior 0): the logged residuals are 0, so
    # DR is the model's top-2 average of q: items 10, 13 -> 1; 11, 12 -> 0; unseen 99 -> 0.5.
    assert dislike["dr"]["mean"] == pytest.approx(
        ((1 + 0) / 2 + (0 + 1) / 2 + (0.5 + 0) / 2 + (1 + 1) / 2) / 4
    )
    assert out["logged"]["dislike_rate"] == 0.5 and out["n"] == 4
    assert out["effective_n"] == pytest.approx(8**2 / (4 + 0 + 25 + 1))
    for estimate in dislike.values():
        low, high = estimate["ci95"]
        assert low <= high


def test_exposures_without_a_propensity_are_left_out_and_none_gives_none():
    out = off_policy(ranked(propensity=(0.25, -1.0, 0.1, -1.0)), k=2, bootstrap=20)
    assert out["n"] == 2
    assert out["dislike_rate"]["ipw"]["mean"] == pytest.approx((2 * 1 + 5 * 0) / 2)
    none = off_policy(ranked(propensity=(-1.0,) * 4), k=2)
    assert none["n"] == 0 and none["dislike_rate"] is None


def test_random_slice_by_hand():
    out = random_slice(ranked(), k=10)
    assert out["n"] == 3  # t0, t2, t3
    # The one positive (log p -2) against the dislikes (-1 and -3): above one of two.
    assert out["auc"]["mean"] == 0.5 and out["auc"]["n"] == 2
    # Row 0's random slate is t0 (-1, a dislike) then t2 (-2, positive): 1 / log2(3). Row 1
    # has one random exposure, no slate.
    assert out["ndcg@10"]["mean"] == pytest.approx(1 / math.log2(3)) and out["ndcg@10"]["n"] == 1
