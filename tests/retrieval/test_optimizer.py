"""LazyAdam against a NumPy Adam written out by hand: only the rows a sparse gradient names move."""

from __future__ import annotations

import numpy as np
import pytest

from ntr.retrieval.optimizer import LazyAdam, make_optimizer
from ntr.tfenv import tf

LR, B1, B2, EPS = 0.01, 0.9, 0.999, 1e-7


def numpy_adam_row(value, grads_by_step, steps):
    """One row under Adam where the row's moments advance only at the steps it has a gradient;
    the bias correction uses the global step (grads_by_step: {step: grad}, steps 1..steps)."""
    m = np.zeros_like(value)
    v = np.zeros_like(value)
    for t in range(1, steps + 1):
        if t not in grads_by_step:
            continue
        g = grads_by_step[t]
        m = B1 * m + (1 - B1) * g
        v = B2 * v + (1 - B2) * g * g
        alpha = LR * np.sqrt(1 - B2**t) / (1 - B1**t)
        value = value - alpha * m / (np.sqrt(v) + EPS)
    return value


def sparse(values, rows, num_rows):
    return tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(rows, tf.int64), [num_rows, 2])


def test_lazy_adam_moves_only_touched_rows_by_hand_computed_steps():
    start = np.array([[1.0, -1.0], [0.5, 0.25], [-2.0, 3.0]], np.float32)
    table = tf.Variable(start)
    optimizer = LazyAdam(LR, beta_1=B1, beta_2=B2, epsilon=EPS)
    g0, g2, g0b = np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-0.3, 0.1])
    optimizer.apply_gradients([(sparse([g0], [0], 3), table)])  # step 1: row 0
    # Step 1 by hand: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1, so the row moves
    # by lr * sign(g) (up to epsilon).
    np.testing.assert_allclose(table.numpy()[0], start[0] - LR * np.sign(g0), rtol=1e-5)
    optimizer.apply_gradients([(sparse([g2], [2], 3), table)])  # step 2: row 2 only
    got = table.numpy()
    # Row 0 did not move at step 2 (Keras's Adam moves it again by its momentum).
    np.testing.assert_allclose(got[0], start[0] - LR * np.sign(g0), rtol=1e-5)
    np.testing.assert_array_equal(got[1], start[1])
    np.testing.assert_allclose(got[2], numpy_adam_row(start[2], {2: g2}, 2), rtol=1e-5)
    # Step 3: row 0 again, twice in one gradient (duplicates are summed before the update).
    optimizer.apply_gradients([(sparse([g0b / 2, g0b / 2], [0, 0], 3), table)])
    np.testing.assert_allclose(table.numpy()[0], numpy_adam_row(start[0], {1: g0, 3: g0b}, 3), rtol=1e-5)

    dense_adam = tf.Variable(start)
    keras = tf.keras.optimizers.Adam(LR, beta_1=B1, beta_2=B2, epsilon=EPS)
    keras.apply_gradients([(sparse([g0], [0], 3), dense_adam)])
    keras.apply_gradients([(sparse([g2], [2], 3), dense_adam)])
    assert not np.allclose(dense_adam.numpy()[0], start[0] - LR * np.sign(g0), rtol=1e-3)


def test_lazy_adam_dense_gradients_match_keras_adam():
    start = np.array([[1.0, -1.0], [0.5, 0.25]], np.float32)
    lazy, dense = tf.Variable(start), tf.Variable(start)
    lazy_opt, dense_opt = LazyAdam(LR), tf.keras.optimizers.Adam(LR)
    for g in ([[1.0, 2.0], [-1.0, 0.5]], [[0.2, -0.1], [0.0, 3.0]]):
        lazy_opt.apply_gradients([(tf.constant(g), lazy)])
        dense_opt.apply_gradients([(tf.constant(g), dense)])
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), rtol=1e-6)


def test_make_optimizer_auto_is_lazy_only_for_sparse_rows_and_names_the_choices():
    assert type(make_optimizer("auto", LR, sparse_rows=True)) is LazyAdam
    assert type(make_optimizer("auto", LR, sparse_rows=False)) is tf.keras.optimizers.Adam
    assert type(make_optimizer("lazy_adam", LR, sparse_rows=False)) is LazyAdam
    assert type(make_optimizer("adam", LR, sparse_rows=True)) is tf.keras.optimizers.Adam
    with pytest.raises(ValueError, match="lazy_adam"):
        make_optimizer("sgd", LR, sparse_rows=True)
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(LR, amsgrad=True)
