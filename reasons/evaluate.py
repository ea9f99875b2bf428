"""Metrics of reason predictors on held-out users, and the two baselines they are compared with.

Reason accuracy and macro-F1 are reported separately on explicit dislikes and on skips (both
with a known true reason); dislike prediction as accuracy and F1 of "negative" on all examples.
Baselines: the majority reason of the training dislikes, and a heuristic rule on the
relation counts (creator disliked before -> creator, topic disliked before -> topic, many
recent shows of the topic -> repetitive, else the majority).
"""

from __future__ import annotations

import numpy as np

from ntr.pipelines.events import REASONS
from ntr.reasons.data import NO_REASON, RULE_FIELDS, Examples

REPEAT_THRESHOLD = 5  # same-topic shows in the last 10 that the rule calls repetition


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over the classes present in `truth` of F1 = 2 TP / (2 TP + FP + FN)."""
    scores = []
    for k in np.unique(truth):
        tp = np.sum((predicted == k) & (truth == k))
        denominator = np.sum(predicted == k) + np.sum(truth == k)
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores)) if scores else float("nan")


def binary_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = np.sum(predicted & truth)
    denominator = np.sum(predicted) + np.sum(truth)
    return float(2 * tp / denominator) if denominator else float("nan")


def reason_metrics(examples: Examples, predicted_reason: np.ndarray) -> dict:
    out = {}
    for name, mask in (
        ("explicit", examples.explicit & (examples.true_reason != NO_REASON)),
        ("skips", examples.negative & ~examples.explicit & (examples.true_reason != NO_REASON)),
    ):
        truth, guess = examples.true_reason[mask], predicted_reason[mask]
        out[name] = {
            "accuracy": float(np.mean(truth == guess)) if mask.any() else None,
            "macro_f1": macro_f1(truth, guess) if mask.any() else None,
            "n": int(mask.sum()),
        }
    return out


def majority_reason(train: Examples) -> int:
    labelled = train.reason[train.explicit & (train.reason != NO_REASON)]
    return int(np.bincount(labelled, minlength=len(REASONS)).argmax())


def heuristic_reasons(examples: Examples, fallback: int) -> np.ndarray:
    """The rule baseline on `Examples.counts`."""
    c = {name: examples.counts[:, j] for j, name in enumerate(RULE_FIELDS)}
    out = np.full(len(examples), fallback, np.int64)
    out[c["repeats"] >= REPEAT_THRESHOLD] = REASONS.index("repetitive")
    out[c["topic_dislikes"] > 0] = REASONS.index("topic")
    out[c["creator_dislikes"] > 0] = REASONS.index("creator")
    return out


def evaluate(model, batch, examples: Examples) -> dict:
    """Reason and dislike metrics of a trained model on embedded held-out examples."""
    from ntr.reasons.train import predict  # noqa: PLC0415 (torch)

    p_negative, reason, _ = predict(model, batch)
    guess = p_negative > 0.5
    return {
        "reason": reason_metrics(examples, reason),
        "dislike": {
            "accuracy": float(np.mean(guess == examples.negative)),
            "f1": binary_f1(examples.negative, guess),
            "n": len(examples),
        },
    }
