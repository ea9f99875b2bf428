"""Retrieval losses: softmax (full / sampled with logQ), not-to-recommend, and group NTR.

The plain functions on logits live in `ntr.losses.functions`; `NotToRecommendTask` injects
them (and streaming metrics such as `TopKHitRate`) as a TFRS-style Task.
"""

from ntr.losses.functions import (
    group_not_to_recommend_loss,
    log1mexp,
    not_to_recommend_loss,
    sampled_softmax_loss,
    softmax_loss,
    topk_not_to_recommend_loss,
)
from ntr.losses.metrics import TopKHitRate, target_rank
from ntr.losses.tasks import NotToRecommendTask

__all__ = [
    "NotToRecommendTask",
    "TopKHitRate",
    "group_not_to_recommend_loss",
    "log1mexp",
    "not_to_recommend_loss",
    "sampled_softmax_loss",
    "softmax_loss",
    "topk_not_to_recommend_loss",
    "target_rank",
]
