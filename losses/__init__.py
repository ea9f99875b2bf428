"""Retrieval losses: softmax (full / sampled with logQ), not-to-recommend, and group NTR.

The plain functions on logits live in `ntr.losses.functions`; the TFRS-style Tasks that inject
them come with the model issue.
"""

from ntr.losses.functions import (
    group_not_to_recommend_loss,
    log1mexp,
    not_to_recommend_loss,
    sampled_softmax_loss,
    softmax_loss,
)

__all__ = [
    "group_not_to_recommend_loss",
    "log1mexp",
    "not_to_recommend_loss",
    "sampled_softmax_loss",
    "softmax_loss",
]
