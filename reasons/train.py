"""Training the reason model: supervised, then progressive group-relative policy optimisation.

Supervised: binary cross-entropy on "negative or not" for every example, and cross-entropy on
the reason for explicit dislikes whose reason is known (the labelled ones). GRPO: for each
example, `group_size` answers are sampled from the policy; `step_reward` scores them,
`group_advantages` normalises within the group (skips, whose reason no log states, are
scored on the judgement alone), and the loss is
-mean(advantage * log pi(answer)) + kl_weight * KL(pi || pi_supervised). The curriculum goes
from easy to hard: stage s of S trains on the s/S of examples the supervised model finds
easiest (highest probability of the right full answer).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from ntr.reasons.data import NO_REASON, Examples
from ntr.reasons.model import ReasonModel, answer_log_prob, policy_kl
from ntr.reasons.rewards import RewardWeights, group_advantages, step_reward


@dataclasses.dataclass(frozen=True)
class ReasonTrainConfig:
    """Attributes:
    hidden / dropout: the head's size.
    epochs / batch_size / lr / weight_decay: supervised stage.
    grpo_steps_per_stage / grpo_batch / grpo_lr: GRPO stage (0 steps: supervised only).
    group_size: answers sampled per example (G).
    kl_weight: pull towards the supervised policy.
    curriculum_stages: S, easy to hard.
    seed: initialisation, batches and sampling.
    """

    hidden: int = 256
    dropout: float = 0.1
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grpo_steps_per_stage: int = 100
    grpo_batch: int = 256
    grpo_lr: float = 2e-4
    group_size: int = 8
    kl_weight: float = 0.05
    curriculum_stages: int = 3
    seed: int = 0


@dataclasses.dataclass
class Batch:
    """Examples as tensors: features [n, FEATURE_DIM], labels [n]."""

    features: torch.Tensor
    negative: torch.Tensor
    reason: torch.Tensor
    labelled: torch.Tensor  # reason known and usable for the supervised reason loss

    def take(self, idx) -> Batch:
        return Batch(*(getattr(self, f.name)[idx] for f in dataclasses.fields(self)))


def as_batch(examples: Examples) -> Batch:
    reason = torch.from_numpy(examples.reason)
    labelled = torch.from_numpy(examples.explicit) & (reason != NO_REASON)
    return Batch(torch.from_numpy(examples.features), torch.from_numpy(examples.negative), reason, labelled)


def supervised_loss(model: ReasonModel, batch: Batch) -> torch.Tensor:
    logit, logits = model(batch.features)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, batch.negative.float())
    if batch.labelled.any():
        loss = loss + torch.nn.functional.cross_entropy(logits[batch.labelled], batch.reason[batch.labelled])
    return loss


def train_supervised(data: Batch, config: ReasonTrainConfig, log=print) -> ReasonModel:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = ReasonModel(config.hidden, config.dropout)
    model.fit_scaling(data.features)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(data.negative)
    for epoch in range(config.epochs):
        model.train()
        order, total = rng.permutation(n), 0.0
        for start in range(0, n, config.batch_size):
            loss = supervised_loss(
                model, data.take(torch.from_numpy(order[start : start + config.batch_size]))
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * min(config.batch_size, n - start)
        if epoch == config.epochs - 1 or epoch % 10 == 0:
            log(f"supervised epoch {epoch + 1}/{config.epochs}: loss {total / n:.4f}")
    return model.eval()


def _answer_probability(model: ReasonModel, data: Batch) -> np.ndarray:
    """[n] probability of the fully right answer (judgement, and reason for known negatives)."""
    with torch.no_grad():
        logit, logits = model(data.features)
        p_yes = torch.sigmoid(logit)
        q = torch.softmax(logits, -1).gather(1, data.reason.clamp(min=0)[:, None])[:, 0]
        known = data.negative & (data.reason != NO_REASON)
        right = torch.where(data.negative, p_yes, 1 - p_yes) * torch.where(known, q, torch.ones_like(q))
    return right.numpy()


def train_grpo(
    model: ReasonModel, data: Batch, config: ReasonTrainConfig, weights=None, log=print
) -> ReasonModel:
    """Progressive GRPO from the supervised `model` (returns a new model; the input is the KL reference)."""
    weights = weights or RewardWeights()
    reference = copy.deepcopy(model).eval()
    policy = copy.deepcopy(model)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.grpo_lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    # Every answer can be scored: the judgement always, the reason where the log states it.
    usable = np.arange(len(data.negative))
    easiest_first = usable[np.argsort(-_answer_probability(reference, data.take(torch.from_numpy(usable))))]
    g = config.group_size
    for stage in range(1, config.curriculum_stages + 1):
        pool = easiest_first[: int(np.ceil(len(easiest_first) * stage / config.curriculum_stages))]
        policy.train()
        mean_reward = 0.0
        for _ in range(config.grpo_steps_per_stage):
            batch = data.take(
                torch.from_numpy(rng.choice(pool, min(config.grpo_batch, len(pool)), replace=False))
            )
            logit, logits = policy(batch.features)
            with torch.no_grad():
                judged = torch.rand((len(logit), g), generator=generator) < torch.sigmoid(logit)[:, None]
                reasons = torch.multinomial(
                    torch.softmax(logits, -1), g, replacement=True, generator=generator
                )
                rewards = step_reward(
                    judged.numpy(),
                    reasons.numpy(),
                    batch.negative.numpy()[:, None],
                    batch.reason.numpy()[:, None],
                    weights,
                )
                advantages = torch.from_numpy(group_advantages(rewards)).float()
                ref_logit, ref_logits = reference(batch.features)
            log_prob = answer_log_prob(logit, logits, judged, reasons)
            kl = policy_kl(logit, logits, ref_logit, ref_logits)
            loss = -(advantages * log_prob).mean() + config.kl_weight * kl.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            mean_reward += float(rewards.mean()) / config.grpo_steps_per_stage
        stage_name = f"grpo stage {stage}/{config.curriculum_stages}"
        log(f"{stage_name} ({len(pool)} examples): mean reward {mean_reward:.3f}")
    return policy.eval()


def predict(model: ReasonModel, data: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(negative) [n], predicted reason [n], reason confidence [n]) — the greedy answer."""
    with torch.no_grad():
        logit, logits = model(data.features)
        q = torch.softmax(logits, -1)
        confidence, reason = q.max(-1)
    return torch.sigmoid(logit).numpy(), reason.numpy(), confidence.numpy()
