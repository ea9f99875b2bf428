"""The group-removal threshold, checked on hand-made predictions."""

import numpy as np
import pytest

from ntr.pipelines.events import REASONS
from ntr.reasons.threshold import NEVER, choose_threshold, group_granularity, removal_stats

C, T, Q = REASONS.index("creator"), REASONS.index("topic"), REASONS.index("quality")
R = REASONS.index("repetitive")


def test_group_granularity():
    assert list(group_granularity(np.array([C, T, Q, R]))) == ["creator", "category", "item", "category"]


def test_removal_stats_by_hand():
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.95])
    predicted = np.array([C, C, T, T, Q])
    truth = np.array([C, T, R, Q, C])  # right, wrong, right (repetitive is category too), wrong, -
    stats = removal_stats(confidence, predicted, truth, 0.65)
    # Acted on: rows 0, 1, 2 (group reasons with p >= 0.65); right: rows 0 and 2.
    assert stats["removals"] == 3 and stats["precision"] == pytest.approx(2 / 3)
    assert stats["wrong_per_dislike"] == pytest.approx(1 / 5)
    # Group-reason dislikes: rows 0, 1, 2, 4; their group removed rightly: rows 0 and 2.
    assert stats["recall"] == pytest.approx(2 / 4)


def test_choose_threshold_takes_the_smallest_that_reaches_the_precision():
    # Ten creator predictions: the five most confident are right, the rest wrong.
    confidence = np.linspace(0.95, 0.5, 10)
    predicted = np.full(10, C)
    truth = np.array([C] * 5 + [T] * 5)
    chosen = choose_threshold(confidence, predicted, truth, target_precision=0.8, min_removals=3)
    # At the 6th confidence precision is 5/6 >= 0.8; at the 7th 5/7 < 0.8.
    assert chosen["threshold"] == pytest.approx(confidence[5])
    assert chosen["removals"] == 6 and chosen["precision"] == pytest.approx(5 / 6)
    strict = choose_threshold(confidence, predicted, truth, target_precision=1.0, min_removals=3)
    assert strict["threshold"] == pytest.approx(confidence[4]) and strict["precision"] == 1.0
    # Support below min_removals never qualifies: no threshold, nothing removed.
    none = choose_threshold(confidence, predicted, truth, target_precision=1.0, min_removals=6)
    assert none["threshold"] == NEVER and none["removals"] == 0 and none["precision"] is None
