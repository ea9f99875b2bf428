"""History-side NTR: the (negative, later target) pairs of a window and the loss, by hand."""

import math

import numpy as np
import pytest

from ntr.losses.functions import history_not_to_recommend_loss
from ntr.losses.history import history_pairs
from ntr.pipelines.events import Label
from ntr.tfenv import tf

P, E, N = int(Label.POSITIVE), int(Label.EXPLICIT_NEGATIVE), int(Label.NEUTRAL)
SKIP = int(Label.IMPLICIT_NEGATIVE)


def test_pairs_of_a_tiny_window():
    # Row 0: pos, creator dislike, pos, skip, pos, neutral. Row 1: a dislike on an unknown item
    # (not usable as a negative) before a positive; row 2: a positive before a dislike only.
    label = tf.constant([[P, E, P, SKIP, P, N], [P, E, P, P, N, N], [P, P, E, N, N, N]])
    granularity = tf.constant([[0, 1, 0, 2, 0, 0], [0, 2, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]])
    negative_ok = tf.constant(
        [[True] * 6, [True, False, True, True, False, False], [True, True, True, False, False, False]]
    )
    positive_target = tf.constant(
        [
            [False, False, True, False, True, False],
            [False, False, True, True, False, False],
            [False, True, False, False, False, False],
        ]
    )
    pairs = history_pairs(label, granularity, negative_ok, positive_target, 2.0, 0.5, decay=0.5)
    got = sorted(
        zip(
            pairs["row"].numpy().tolist(),
            pairs["target"].numpy().tolist(),
            pairs["source"].numpy().tolist(),
            pairs["weight"].numpy().tolist(),
            pairs["granularity"].numpy().tolist(),
            strict=True,
        )
    )
    # (row, t, s, w * decay ** (t - s - 1), granularity): the skip at 3 is item-level (0)
    # although its reason column says 2; nothing in rows 1 and 2.
    assert got == [(0, 2, 1, 2.0, 1), (0, 4, 1, 0.5, 1), (0, 4, 3, 0.5, 0)]


def test_normalised_pairs():
    # Two dislikes then a positive: each pair gets w / 2; the skip's pair keeps w_i / 1.
    label = tf.constant([[E, E, SKIP, P]])
    target = tf.constant([[False, False, False, True]])
    pairs = history_pairs(
        label, tf.zeros([1, 4], tf.int32), tf.ones([1, 4], tf.bool), target, 2.0, 0.5, 1.0, True
    )
    got = sorted(zip(pairs["source"].numpy().tolist(), pairs["weight"].numpy().tolist(), strict=True))
    assert got == [(0, 1.0), (1, 1.0), (2, 0.5)]


def test_pairs_without_implicit_weight_skip_the_skips():
    label = tf.constant([[P, SKIP, P]])
    target = tf.constant([[False, False, True]])
    pairs = history_pairs(label, tf.zeros([1, 3], tf.int32), tf.ones([1, 3], tf.bool), target, 1.0, 0.0)
    assert pairs["row"].numpy().size == 0


def test_history_loss_by_hand():
    # Corpus form: p_G = 0.2 of the whole softmax -> -w log(0.8).
    corpus = history_not_to_recommend_loss(
        tf.constant([math.log(0.2)]), tf.constant([0.0]), tf.constant([3.0])
    ).numpy()
    assert corpus[0] == pytest.approx(-3.0 * math.log(0.8), rel=1e-6)
    # Target form: G's log mass 1.0 against the next positive's logit 2.5:
    # p_G = e^1 / (e^1 + e^2.5), loss = log(1 + e^(1 - 2.5)).
    mass, target = 1.0, 2.5
    normaliser = float(np.logaddexp(mass, target))
    value = history_not_to_recommend_loss(tf.constant([mass]), tf.constant([normaliser]), 1.0).numpy()
    assert value[0] == pytest.approx(math.log1p(math.exp(mass - target)), rel=1e-6)
    # A zero weight masks the pair; p_G -> 1 stays finite.
    zeros = tf.constant([0.0, 0.0])
    masked = history_not_to_recommend_loss(zeros, zeros, tf.constant([0.0, 1.0]))
    assert masked.numpy()[0] == 0.0 and np.isfinite(masked.numpy()[1])
