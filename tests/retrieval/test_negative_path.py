"""The negative path: penalties by hand on a tiny batch."""

import numpy as np

from ntr.pipelines.events import Label
from ntr.retrieval.data import NUM_RESERVED
from ntr.retrieval.items import load_item_table
from ntr.retrieval.model import NTRModel
from ntr.retrieval.negative_path import SKIP_KIND
from ntr.tfenv import tf
from tests.retrieval.conftest import tiny_config


def test_penalty_by_hand(tiny_data):
    table = load_item_table(tiny_data)
    config = tiny_config("ntr_history", ("model.negative_path_decay=1.0", "model.negative_path_skips=true"))
    model = NTRModel(config, table)
    path = model.negative_path
    # kinds: item 0, creator 1, category 2, skip 3; rows are (id, creator, category) coefficients.
    coefficients = np.array([[0.5, 0, 0], [0, 2.0, 0], [0, 0, 3.0], [0.25, 0.25, 0.25]], np.float32)
    path.coefficients.assign(coefficients / path.scale)
    creator_reason = next(r for r in range(table.num_reasons) if table.reason_granularity[r] == 1)
    items = [NUM_RESERVED + 3, NUM_RESERVED + 7, NUM_RESERVED + 9, NUM_RESERVED + 11, 0]
    labels = [Label.POSITIVE, Label.EXPLICIT_NEGATIVE, Label.POSITIVE, Label.IMPLICIT_NEGATIVE, Label.NEUTRAL]
    features = {
        "item": tf.constant([items]),
        "label": tf.constant([[int(x) for x in labels]]),
        "reason": tf.constant([[0, creator_reason, 0, 0, 0]]),
        "mask": tf.constant([[True, True, True, True, False]]),
    }
    penalty = path(features, features["mask"]).numpy()[0]
    tower = model.item_tower
    ident, creator, category = (p.numpy()[0] for p in tower.parts(features["item"]))
    dislike = 2.0 * creator[1]  # creator reason: the creator part only
    skip = 0.25 * (ident[3] + creator[3] + category[3])
    expected = np.stack([np.zeros_like(dislike), dislike, dislike, dislike + skip, dislike + skip])
    np.testing.assert_allclose(penalty, expected, rtol=1e-5, atol=1e-6)
    assert path.kinds(features, features["mask"]).numpy()[0].tolist() == [4, 1, 4, SKIP_KIND, 4]


def test_decay_and_explicit_only(tiny_data):
    table = load_item_table(tiny_data)
    model = NTRModel(
        tiny_config("ntr_history", ("model.negative_path_decay=0.5", "model.negative_path_skips=false")),
        table,
    )
    path = model.negative_path
    path.coefficients.assign(np.full((4, 3), 1.0 / path.scale, np.float32))
    items = [NUM_RESERVED + 3, NUM_RESERVED + 7, NUM_RESERVED + 9, NUM_RESERVED + 11]
    labels = [Label.EXPLICIT_NEGATIVE, Label.POSITIVE, Label.IMPLICIT_NEGATIVE, Label.POSITIVE]
    features = {
        "item": tf.constant([items]),
        "label": tf.constant([[int(x) for x in labels]]),
        "reason": tf.constant([[0, 0, 0, 0]]),
        "mask": tf.constant([[True] * 4]),
    }
    penalty = path(features, features["mask"]).numpy()[0]
    full = model.item_tower(features["item"]).numpy()[0]  # id + creator + category, all weights 1
    # The dislike at 0 decays by half per event; the skip at 2 does not act (explicit only).
    expected = np.stack([full[0], 0.5 * full[0], 0.25 * full[0], 0.125 * full[0]])
    np.testing.assert_allclose(penalty, expected, rtol=1e-5, atol=1e-6)


def test_path_starts_switched_off_and_acts_without_negative_inputs(tiny_data):
    table = load_item_table(tiny_data)
    assert NTRModel(tiny_config("positives_only"), table).negative_path is None
    blind = NTRModel(tiny_config("positives_only", ("model.negative_path=true",)), table)
    assert blind.negative_path is not None
    with_path = NTRModel(tiny_config("ntr_history"), table)
    assert np.all(with_path.negative_path.coefficients.numpy() == 0)


def test_logit_units_and_own_parts_by_hand(tiny_data):
    """units=logit: a strength b lowers q . part by exactly b; parts=own: a creator reason may
    only use the creator part, whatever its stored coefficients say."""
    table = load_item_table(tiny_data)
    config = tiny_config("ntr_fitted", ("model.negative_path_decay=1.0",))
    model = NTRModel(config, table)
    path = model.negative_path
    path.coefficients.assign(np.full((4, 3), 2.0 / path.scale, np.float32))  # every entry 2.0
    creator_reason = next(r for r in range(table.num_reasons) if table.reason_granularity[r] == 1)
    items = [NUM_RESERVED + 3, NUM_RESERVED + 7]
    features = {
        "item": tf.constant([items]),
        "label": tf.constant([[int(Label.POSITIVE), int(Label.EXPLICIT_NEGATIVE)]]),
        "reason": tf.constant([[0, creator_reason]]),
        "mask": tf.constant([[True, True]]),
    }
    penalty = path(features, features["mask"]).numpy()[0]
    _, creator, category = (p.numpy()[0, 1] for p in model.item_tower.parts(features["item"]))
    # parts=own: the creator part without its category's direction (Gram-Schmidt), by hand.
    specific = creator - (creator @ category) / (category @ category) * category
    expected = 2.0 * specific / np.sum(specific**2)  # creator part only, divided by |part|^2
    np.testing.assert_allclose(penalty[1], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(penalty[1] @ specific, 2.0, rtol=1e-4)  # the logit drop is b
    assert abs(penalty[1] @ category) < 1e-4  # the shared category direction is not moved
    np.testing.assert_allclose(penalty[0], 0.0)
    np.testing.assert_array_equal(path.strengths().numpy()[1], [0.0, 2.0, 0.0])
    np.testing.assert_array_equal(path.strengths().numpy()[0], [2.0, 2.0, 2.0])  # item-level: all
