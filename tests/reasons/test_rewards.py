"""Step rewards on hand-made answers, and the GRPO advantage normalisation."""

import numpy as np
import pytest

from ntr.reasons.rewards import RewardWeights, group_advantages, step_reward

CREATOR, TOPIC = 1, 2


@pytest.mark.parametrize(
    ("said_negative", "said_reason", "negative", "reason", "want"),
    [
        (True, CREATOR, True, CREATOR, 2.0),  # right call, right reason
        (True, TOPIC, True, CREATOR, 1.0),  # right call, wrong reason: judgement only
        (False, CREATOR, True, CREATOR, 0.0),  # missed the dislike: the right reason earns nothing
        (True, CREATOR, False, CREATOR, 0.0),  # false alarm: no reason reward either
        (False, TOPIC, False, CREATOR, 1.0),  # right "not disliked": the reason is irrelevant
        (True, TOPIC, True, -1, 1.0),  # a skip (no logged reason): judgement only
    ],
)
def test_step_reward_by_hand(said_negative, said_reason, negative, reason, want):
    assert step_reward(said_negative, said_reason, negative, reason) == want


def test_wrong_reason_penalty_and_broadcasting():
    weights = RewardWeights(judgement=1.0, reason=2.0, wrong_reason=-0.5)
    # One example (a creator dislike) with four sampled answers.
    got = step_reward([True, True, False, True], [CREATOR, TOPIC, CREATOR, 0], True, CREATOR, weights)
    np.testing.assert_allclose(got, [3.0, 0.5, 0.0, 0.5])
    # A negative with no logged reason (-1) is neither penalised nor paid for its reason.
    got = step_reward([True, True, False], [CREATOR, TOPIC, CREATOR], True, -1, weights)
    np.testing.assert_allclose(got, [1.0, 1.0, 0.0])


def test_group_advantages_by_hand():
    rewards = np.array([[2.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    # Row 1: mean 1, population std sqrt(0.5); row 2: all equal -> advantages 0.
    want = np.array([[1 / np.sqrt(0.5), 0.0, -1 / np.sqrt(0.5), 0.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(group_advantages(rewards), want, atol=1e-5)
    np.testing.assert_allclose(group_advantages(rewards).mean(1), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="group_size >= 2"):
        group_advantages(np.ones((3, 1)))


def test_metrics_by_hand():
    from ntr.reasons.evaluate import binary_f1, macro_f1  # noqa: PLC0415

    truth, guess = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1])
    # class 0: TP 1, FP 0, FN 1 -> 2/3; class 1: TP 1, FP 2, FN 0 -> 0.5; class 2: 0.
    assert macro_f1(truth, guess) == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert binary_f1(np.array([True, True, False]), np.array([True, False, True])) == pytest.approx(0.5)
