"""NotToRecommendTask: hand-computed losses on the 2x3 matrix of test_functions, and metrics.

Queries are the rows of L = log [[1, 2, 1], [1, 1, 2]] and candidates the identity, so the
task's logits are exactly L: softmax rows p0 = [1/4, 1/2, 1/4], p1 = [1/4, 1/4, 1/2].
"""

import math

import numpy as np
import pytest

from ntr.losses import NotToRecommendTask, TopKHitRate
from ntr.pipelines.events import Label
from ntr.tfenv import tf

L = np.log(np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 2.0]], np.float32))
EYE = np.eye(3, dtype=np.float32)
POS, EXP, IMP, NEU = (
    int(x) for x in (Label.POSITIVE, Label.EXPLICIT_NEGATIVE, Label.IMPLICIT_NEGATIVE, Label.NEUTRAL)
)
LOG2 = math.log(2.0)


def run(task, labels, target_index, **kwargs):
    return float(
        task(tf.constant(L), tf.constant(EYE), tf.constant(labels), tf.constant(target_index), **kwargs)
    )


def test_positive_plus_explicit_negative():
    # Row 0 positive on column 1: -log(1/2). Row 1 explicit negative on column 2:
    # -1 * log(1 - 1/2). Divided by the one positive row: 2 log 2.
    assert run(NotToRecommendTask(), [POS, EXP], [1, 2]) == pytest.approx(2 * LOG2, rel=1e-6)


def test_weights_per_negative_kind_and_neutral_rows():
    task = NotToRecommendTask(explicit_weight=3.0, implicit_weight=0.1)
    # Implicit: 0.1 * log 2 added to the positive's log 2.
    assert run(task, [POS, IMP], [1, 2]) == pytest.approx(1.1 * LOG2, rel=1e-6)
    # Explicit weight 3 on row 1's column 0 (p = 1/4): -3 log(3/4).
    assert run(task, [POS, EXP], [1, 0]) == pytest.approx(LOG2 - 3 * math.log(0.75), rel=1e-6)
    # A neutral row adds nothing; with no positive row the sum is divided by 1.
    assert run(task, [POS, NEU], [1, 2]) == pytest.approx(LOG2, rel=1e-6)
    assert run(task, [NEU, EXP], [1, 2]) == pytest.approx(3 * LOG2, rel=1e-6)


def test_group_rows_use_group_loss():
    # Row 1's group is columns {1, 2}: p_G = 3/4, -log(1/4) = 2 log 2; row 0 has no group.
    mask = tf.constant([[False, False, False], [False, True, True]])
    assert run(NotToRecommendTask(), [POS, EXP], [1, 2], group_mask=mask) == pytest.approx(3 * LOG2, rel=1e-6)
    # The callable form builds the mask for the negative rows only.
    calls = []

    def build(rows):
        calls.append(rows.numpy().tolist())
        return tf.gather(mask, rows)

    assert run(NotToRecommendTask(), [POS, EXP], [1, 2], group_mask=build) == pytest.approx(
        3 * LOG2, rel=1e-6
    )
    assert calls == [[1]]


def test_logq_correction_and_accidental_hits():
    task = NotToRecommendTask()
    # logits - log q with q = [1/2, 1/4, 1/4]: row 0 -> log [2, 8, 4], p(col 1) = 8/14.
    q = tf.constant([0.5, 0.25, 0.25])
    got = run(task, [POS, NEU], [1, 2], candidate_sampling_probability=q)
    assert got == pytest.approx(-math.log(8 / 14), rel=1e-6)
    # Candidates 0 and 1 are the same item: for row 0 (target column 1) column 0 is an
    # accidental hit and is masked, so p = 2 / (2 + 1).
    ids = tf.constant([7, 7, 9])
    assert run(task, [POS, NEU], [1, 2], candidate_ids=ids) == pytest.approx(-math.log(2 / 3), rel=1e-6)


def test_in_batch_default_targets_are_the_diagonal():
    task = NotToRecommendTask()
    queries = tf.constant(np.log([[2.0, 1.0], [1.0, 1.0]]).astype(np.float32))
    # Row 0 positive on its own candidate: p = 2/3. Row 1 explicit on column 1: p = 1/2.
    got = float(task(queries, tf.eye(2), tf.constant([POS, EXP])))
    assert got == pytest.approx(-math.log(2 / 3) + LOG2, rel=1e-6)


def test_injected_metrics():
    hit1, neghit1 = TopKHitRate(1, name="hr@1"), TopKHitRate(1, name="neghit@1")
    task = NotToRecommendTask(positive_metrics=[hit1], negative_metrics=[neghit1])
    run(task, [POS, EXP], [1, 2])  # row 0's target is its argmax; so is row 1's negative
    run(task, [POS, EXP], [0, 0])  # neither is
    assert float(hit1.result()) == 0.5 and float(neghit1.result()) == 0.5
    run(task, [POS, EXP], [0, 0], compute_metrics=False)
    assert float(hit1.result()) == 0.5


def test_ntr_gradient_by_hand():
    # d/dL_j of -log(1 - p_t) = p_j * p_t / (1 - p_t) for j != t and p_t for j = t.
    # Row 1, t = 2, p = [1/4, 1/4, 1/2]: gradient [-1/4, -1/4, 1/2]. The row-0 positive on
    # column 1 adds p0 - onehot = [1/4, -1/2, 1/4] to row 0.
    q = tf.Variable(L)
    with tf.GradientTape() as tape:
        loss = NotToRecommendTask()(q, tf.constant(EYE), tf.constant([POS, EXP]), tf.constant([1, 2]))
    grad = tf.convert_to_tensor(tape.gradient(loss, q)).numpy()  # gather gives IndexedSlices
    np.testing.assert_allclose(grad, [[0.25, -0.5, 0.25], [-0.25, -0.25, 0.5]], atol=1e-6)
