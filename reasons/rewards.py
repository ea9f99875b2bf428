"""Rewards and advantages for the group-relative policy optimisation stage (S-GRPO style).

An answer to "how will this user react to this item?" has two steps: the judgement (will it
be disliked or skipped: yes / no) and, for a yes, the reason. The step reward pays for the
judgement, and pays for the reason only when the judgement is right and the exposure really was
a negative, so a policy cannot farm reason reward by calling everything a dislike. A negative
whose reason the log does not state (a skip) pays for the judgement alone: no reason is right
or wrong for it.

Advantages are group-relative: G answers are sampled per example, and each answer's reward is
normalised by the mean and standard deviation of its group (no value network).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class RewardWeights:
    """Attributes:
    judgement: reward for a correct disliked / not-disliked call.
    reason: extra reward for the right reason (only after a correct "disliked" call).
    wrong_reason: reward (usually <= 0) for a wrong reason after a correct "disliked" call.
    """

    judgement: float = 1.0
    reason: float = 1.0
    wrong_reason: float = 0.0


def step_reward(
    predicted_negative: np.ndarray,
    predicted_reason: np.ndarray,
    negative: np.ndarray,
    reason: np.ndarray,
    weights: RewardWeights | None = None,
) -> np.ndarray:
    """Reward of each answer.

    Args:
      predicted_negative: [...] bool, the answer's judgement.
      predicted_reason: [...] int, the answer's reason id (ignored when the judgement is no).
      negative: [...] bool, whether the exposure was a negative (broadcasts against the answers).
      reason: [...] int, the known reason id; negative (NO_REASON) when the log states none, and
        ignored for non-negatives.
      weights: the reward scale.

    Returns:
      [...] float rewards.
    """
    w = weights or RewardWeights()
    predicted_negative = np.asarray(predicted_negative, bool)
    negative = np.asarray(negative, bool)
    reason = np.asarray(reason)
    right = predicted_negative == negative
    reward = np.where(right, w.judgement, 0.0)
    # The reason step is paid only on a right "yes, disliked" judgement.
    judged_negative = right & negative & (reason >= 0)
    reason_right = np.asarray(predicted_reason) == reason
    reward = reward + np.where(judged_negative, np.where(reason_right, w.reason, w.wrong_reason), 0.0)
    return reward.astype(np.float64)


def group_advantages(rewards: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """GRPO advantages: (r - mean of the group) / (std of the group + eps).

    Args:
      rewards: [num_examples, group_size] rewards of the G answers sampled per example.
      eps: keeps groups whose answers all scored the same at advantage 0.

    Returns:
      [num_examples, group_size] advantages (each row has mean 0).
    """
    rewards = np.asarray(rewards, np.float64)
    if rewards.ndim != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be [num_examples, group_size >= 2], got shape {rewards.shape}.")
    mean = rewards.mean(1, keepdims=True)
    std = rewards.std(1, keepdims=True)  # population std, as in GRPO
    return (rewards - mean) / (std + eps)
