"""The reason model: a small MLP over an exposure's features (`reasons.features`).

Input: [batch, FEATURE_DIM] (catalogue vectors of the item and of the user's pooled history,
and numbers from the log). Output: the logit of "this exposure is a negative (dislike or
skip)" [batch] and reason logits [batch, len(REASONS)].
As a policy for GRPO, an answer is a judgement ~ Bernoulli(sigmoid(negative logit)) and, for
a yes, a reason ~ Categorical(softmax(reason logits)).
"""

from __future__ import annotations

import torch

from ntr.pipelines.events import REASONS
from ntr.reasons.features import FEATURE_DIM


class ReasonModel(torch.nn.Module):
    """MLP over standardised exposure features with two heads.

    The features mix a unit-norm text vector (components ~0.05) with counts and shares; they
    are standardised with the training set's mean and spread (`fit_scaling`), kept as buffers
    so a saved model carries them.
    """

    def __init__(
        self,
        hidden: int = 256,
        dropout: float = 0.1,
        num_reasons: int = len(REASONS),
        input_dim: int = FEATURE_DIM,
    ):
        super().__init__()
        self.register_buffer("shift", torch.zeros(input_dim))
        self.register_buffer("scale", torch.ones(input_dim))
        self.body = torch.nn.Sequential(
            torch.nn.Linear(input_dim, hidden),
            torch.nn.GELU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, hidden),
            torch.nn.GELU(),
        )
        self.negative = torch.nn.Linear(hidden, 1)
        self.reason = torch.nn.Linear(hidden, num_reasons)

    def forward(self, features: torch.Tensor):
        """[batch, input_dim] -> (negative logits [batch], reason logits [batch, num_reasons])."""
        h = self.body((features - self.shift) / self.scale)
        return self.negative(h).squeeze(-1), self.reason(h)

    def fit_scaling(self, features: torch.Tensor) -> None:
        """Standardise inputs like `features` [n, input_dim] (constant columns are only shifted)."""
        self.shift.copy_(features.mean(0))
        spread = features.std(0)
        self.scale.copy_(torch.where(spread > 1e-6, spread, torch.ones_like(spread)))


def answer_log_prob(
    negative_logit: torch.Tensor, reason_logits: torch.Tensor, judged: torch.Tensor, reason: torch.Tensor
) -> torch.Tensor:
    """log pi(answer) of sampled answers.

    Args:
      negative_logit: [batch]; reason_logits: [batch, R].
      judged: [batch, G] bool sampled judgements; reason: [batch, G] long sampled reasons.

    Returns:
      [batch, G]: log p(judgement) + judgement * log q(reason).
    """
    log_yes = torch.nn.functional.logsigmoid(negative_logit)[:, None]
    log_no = torch.nn.functional.logsigmoid(-negative_logit)[:, None]
    log_q = torch.log_softmax(reason_logits, -1).gather(1, reason)
    return torch.where(judged, log_yes + log_q, log_no)


def policy_kl(logit: torch.Tensor, logits: torch.Tensor, ref_logit: torch.Tensor, ref_logits: torch.Tensor):
    """[batch] KL(pi || pi_ref) of the two-step answer distribution (Bernoulli, then reason if yes)."""
    p, ref_p = torch.sigmoid(logit), torch.sigmoid(ref_logit)
    eps = 1e-7
    kl_judgement = p * (torch.log(p + eps) - torch.log(ref_p + eps)) + (1 - p) * (
        torch.log(1 - p + eps) - torch.log(1 - ref_p + eps)
    )
    log_q, ref_log_q = torch.log_softmax(logits, -1), torch.log_softmax(ref_logits, -1)
    kl_reason = (log_q.exp() * (log_q - ref_log_q)).sum(-1)
    return kl_judgement + p * kl_reason
