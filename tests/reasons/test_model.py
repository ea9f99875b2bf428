"""The reason policy's log-probabilities and KL by hand, and a tiny end-to-end training run."""

import dataclasses
import math
import os

import numpy as np
import torch

from ntr.reasons.model import answer_log_prob, policy_kl


def test_answer_log_prob_by_hand():
    logit = torch.tensor([0.0, math.log(3.0)])  # p(yes) = 0.5, 0.75
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]))
    judged = torch.tensor([[True, False], [True, True]])
    reason = torch.tensor([[1, 2], [2, 0]])
    want = torch.log(torch.tensor([[0.5 * 0.25, 0.5], [0.75 * 0.7, 0.75 * 0.1]]))
    torch.testing.assert_close(answer_log_prob(logit, logits, judged, reason), want)


def test_policy_kl_by_hand():
    logit, ref_logit = torch.tensor([0.0]), torch.tensor([math.log(3.0)])  # p 0.5 vs 0.75
    logits = torch.log(torch.tensor([[0.5, 0.5]]))
    ref_logits = torch.log(torch.tensor([[0.25, 0.75]]))
    kl_j = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl_r = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    torch.testing.assert_close(
        policy_kl(logit, logits, ref_logit, ref_logits),
        torch.tensor([kl_j + 0.5 * kl_r]),
        atol=1e-6,
        rtol=1e-5,
    )
    assert float(policy_kl(logit, logits, logit, logits)) < 1e-6


def test_tiny_training_run(tiny_data, tmp_path):
    from ntr.reasons.catalogue import ItemVectors  # noqa: PLC0415
    from ntr.reasons.data import ReasonDataConfig, build_examples, load_raw  # noqa: PLC0415
    from ntr.reasons.encoder import EmbeddingCache  # noqa: PLC0415
    from ntr.reasons.features import FEATURE_DIM  # noqa: PLC0415
    from ntr.reasons.train import ReasonTrainConfig, as_batch, predict, train_grpo, train_supervised  # noqa: PLC0415

    by_user, items = load_raw(os.path.join(os.path.dirname(tiny_data), "raw"))
    vectors = ItemVectors.embed(items, EmbeddingCache(str(tmp_path / "cache")))
    config = ReasonDataConfig(max_explicit=60, max_skips=60, max_others=60)
    examples = build_examples(by_user, items, vectors, config)
    users = {name: set(split.user) for name, split in examples.items()}
    assert users["train"].isdisjoint(users["test"]) and users["valid"].isdisjoint(
        users["train"] | users["test"]
    )
    assert users["valid"]  # 10% of the users by default
    # The test users do not depend on whether a validation split is taken.
    no_valid = build_examples(by_user, items, vectors, dataclasses.replace(config, valid_share=0.0))
    assert set(no_valid["test"].user) == users["test"] and not len(no_valid["valid"])
    again = build_examples(by_user, items, vectors, config)["train"].features
    np.testing.assert_array_equal(again, examples["train"].features)  # seeded
    assert examples["train"].features.shape == (len(examples["train"]), FEATURE_DIM)
    for split in examples.values():
        skips = split.negative & ~split.explicit
        # Training labels come from the log only: skips never carry one (the world's hidden
        # cause of a skip is evaluation truth), explicit dislikes carry their logged reason.
        assert (split.reason[skips | ~split.negative] == -1).all()
        assert (split.true_reason[skips] >= 0).all() and (split.true_reason[~split.negative] == -1).all()
        np.testing.assert_array_equal(split.reason[split.explicit], split.true_reason[split.explicit])
    train = as_batch(examples["train"])
    logs = []
    train_config = ReasonTrainConfig(epochs=11, grpo_steps_per_stage=3, grpo_batch=32, curriculum_stages=2)
    model = train_supervised(train, train_config, log=logs.append)
    first, last = (float(line.rsplit(" ", 1)[1]) for line in (logs[0], logs[-1]))
    assert last < first, logs  # the supervised loss goes down on its own training data
    policy = train_grpo(model, train, train_config, log=logs.append)
    assert sum("grpo stage" in line for line in logs) == 2
    # Inputs are standardised with the training set's statistics, saved in the model.
    torch.testing.assert_close(model.shift, train.features.mean(0))
    p, reason, confidence = predict(policy, as_batch(examples["test"]))
    assert p.shape == reason.shape == confidence.shape == (len(examples["test"]),)
    assert np.all((0 <= p) & (p <= 1)) and np.all(confidence >= 1 / 6 - 1e-6)
