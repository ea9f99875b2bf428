"""Loss functions against hand-computed values, finite differences and the extremes."""

import math

import numpy as np
import pytest

from ntr.losses.functions import (
    MIN_ONE_MINUS_P,
    group_not_to_recommend_loss,
    log1mexp,
    not_to_recommend_loss,
    sampled_softmax_loss,
    softmax_loss,
    topk_not_to_recommend_loss,
)
from ntr.tfenv import tf

# The 2x3 score matrix used below, worked out by hand:
#   row 0: logits log[1, 2, 1] -> p = [1/4, 1/2, 1/4]
#   row 1: logits log[1, 1, 2] -> p = [1/4, 1/4, 1/2]
LOGITS = tf.constant(np.log([[1.0, 2.0, 1.0], [1.0, 1.0, 2.0]]), tf.float32)


def test_softmax_loss_hand_computed():
    # targets: row 0 -> column 1 (p = 1/2), row 1 -> column 0 (p = 1/4)
    got = softmax_loss(LOGITS, tf.constant([1, 0])).numpy()
    np.testing.assert_allclose(got, [math.log(2), math.log(4)], rtol=1e-6)


def test_not_to_recommend_hand_computed():
    # row 0: -1 * log(1 - 1/2) = log 2;  row 1 (column 2, p = 1/2, w = 2): -2 * log(1/2) = 2 log 2
    got = not_to_recommend_loss(LOGITS, tf.constant([1, 2]), tf.constant([1.0, 2.0])).numpy()
    np.testing.assert_allclose(got, [math.log(2), 2 * math.log(2)], rtol=1e-6)
    # row 0, column 0 (p = 1/4): -log(3/4)
    np.testing.assert_allclose(
        not_to_recommend_loss(LOGITS[:1], tf.constant([0])).numpy(), [-math.log(0.75)], rtol=1e-6
    )


def test_topk_ntr_hand_computed_and_its_bar_takes_no_gradient():
    logits = tf.Variable([[3.0, 1.0, 2.0, 0.0], [3.0, 1.0, 2.0, 0.0]])
    with tf.GradientTape() as tape:
        # row 0: target column 0 (3), K=2: the others' 2nd best is 1 -> w * log(1 + e^(3-1)), w=1
        # row 1: target column 3 (0), K=2: bar 2 -> 2 * log(1 + e^(0-2)), w=2
        got = topk_not_to_recommend_loss(logits, tf.constant([0, 3]), tf.constant([1.0, 2.0]), k=2)
    np.testing.assert_allclose(got.numpy(), [math.log1p(math.e**2), 2 * math.log1p(math.e**-2)], rtol=1e-6)
    grad = tape.gradient(got, logits).numpy()
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    # Only the target's own logit moves: d/ds w*softplus(s - bar) = w * sigmoid(s - bar).
    np.testing.assert_allclose(grad, [[sigmoid(2), 0, 0, 0], [0, 0, 0, 2 * sigmoid(-2)]], rtol=1e-6)
    # K at least the number of other candidates: the bar is the lowest other logit.
    last = topk_not_to_recommend_loss(logits[:1], tf.constant([0]), k=10).numpy()
    np.testing.assert_allclose(last, [math.log1p(math.e**3)], rtol=1e-6)


def test_group_ntr_hand_computed():
    # row 0: group {0, 2}, p = 1/4 + 1/4 -> -log(1/2); row 1: empty group -> 0
    mask = tf.constant([[True, False, True], [False, False, False]])
    got = group_not_to_recommend_loss(LOGITS, mask).numpy()
    np.testing.assert_allclose(got, [math.log(2), 0.0], rtol=1e-6, atol=1e-7)
    # A one-item group is plain NTR.
    single = tf.constant([[False, True, False], [False, False, True]])
    np.testing.assert_allclose(
        group_not_to_recommend_loss(LOGITS, single).numpy(),
        not_to_recommend_loss(LOGITS, tf.constant([1, 2])).numpy(),
        rtol=1e-6,
    )


def test_sampled_softmax_logq_and_accidental_hits():
    # Candidates: ids [10, 20, 10], q = [1/2, 1/4, 1/4]. Corrected exp(logits - log q):
    #   row 0: [1/(1/2), 2/(1/4), 1/(1/4)] = [2, 8, 4]; target id 20 at column 1 -> -log(8/14)
    #   row 1: [2, 4, 8]; target id 10 at column 0; column 2 is also id 10, an accidental hit,
    #          masked -> softmax over [2, 4] -> -log(2/6) = log 3
    got = sampled_softmax_loss(
        LOGITS,
        target_ids=tf.constant([20, 10]),
        candidate_ids=tf.constant([10, 20, 10]),
        candidate_log_q=tf.math.log(tf.constant([0.5, 0.25, 0.25])),
        target_index=tf.constant([1, 0]),
    ).numpy()
    np.testing.assert_allclose(got, [math.log(14 / 8), math.log(3)], rtol=1e-5)


def test_ntr_gradient_matches_finite_differences_and_formula():
    logits = tf.constant([[0.3, -1.2, 0.8, 0.1], [1.5, 0.2, -0.4, 0.0]], tf.float64)
    target = tf.constant([2, 0])

    def loss(z):
        return tf.reduce_sum(not_to_recommend_loss(z, target, 1.0))

    theoretical, numerical = tf.test.compute_gradient(loss, [logits])
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-7)
    # d/dz_j [-log(1 - p_t)] = p_t / (1 - p_t) * (1[j = t] - p_j)
    p = tf.nn.softmax(logits).numpy()
    pt = p[[0, 1], [2, 0]][:, None]
    expected = pt / (1 - pt) * (np.eye(4)[[2, 0]] - p)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(logits)
    np.testing.assert_allclose(tape.gradient(value, logits).numpy(), expected, rtol=1e-8)


def test_ntr_bounded_as_p_goes_to_zero():
    for gap in (5.0, 20.0, 80.0):
        logits = tf.constant([[0.0, gap]], tf.float32)
        value = not_to_recommend_loss(logits, tf.constant([0])).numpy()[0]
        assert 0.0 <= value <= math.exp(-gap) * 1.01 + 1e-7


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_ntr_stable_as_p_goes_to_one(dtype):
    logits = tf.Variable([[200.0, 0.0, -50.0], [1e4, -1e4, 0.0]], dtype=dtype)
    with tf.GradientTape() as tape:
        value = not_to_recommend_loss(logits, tf.constant([0, 0]))
        group = group_not_to_recommend_loss(logits, tf.constant([[True, False, False], [True, True, False]]))
        total = tf.reduce_sum(value) + tf.reduce_sum(group)
    grad = tape.gradient(total, logits)
    assert np.isfinite(value.numpy()).all() and np.isfinite(group.numpy()).all()
    assert np.isfinite(grad.numpy()).all()
    np.testing.assert_allclose(value.numpy(), -math.log(MIN_ONE_MINUS_P), rtol=1e-3)


def test_log1mexp_matches_numpy_across_the_switch():
    x = np.array([-1e-9, -1e-3, -0.5, -0.6931, -0.7, -5.0, -50.0])
    # Accurate NumPy oracle: the naive log(1 - exp(x)) loses everything at x = -1e-9 and x = -50.
    oracle = np.where(x > -np.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))
    np.testing.assert_allclose(log1mexp(tf.constant(x), min_one_minus_p=1e-12).numpy(), oracle, rtol=1e-10)
    assert oracle[-1] == pytest.approx(-math.exp(-50), rel=1e-12)
