"""The four reason arms of the online-reasons closed loop: what each lets the recommender see."""

import os

import numpy as np
import pytest

from ntr.reasons.data import load_items
from ntr.retrieval.exported import ExportedModel
from ntr.serving.reasons import OnlineReasons
from ntr.serving.recommender import RecommenderConfig
from ntr.simulation.closed_loop import ClosedLoopConfig, World, logged_histories, sample_users, story
from ntr.simulation.rankers import RecommenderRanker
from ntr.simulation.reason_arms import ReasonArm
from tests.conftest import fixed_reason_model


class Recorder:
    """A ranker that remembers what it was shown and ranks the first k items."""

    def __init__(self, model):
        self.model, self.seen = model, []

    def rank(self, histories, k, seeds):
        self.seen.append(histories)
        return np.tile(np.arange(k), (len(histories), 1))


@pytest.fixture(scope="module")
def tiny_export(tiny_model):
    return tiny_model("ntr")


@pytest.fixture(scope="module")
def reasons(tiny_data, tmp_path_factory):
    items_path = os.path.join(os.path.dirname(tiny_data), "raw", "items.jsonl")
    directory = fixed_reason_model(
        str(tmp_path_factory.mktemp("arm-reasons")), "creator", 0.8, 0.7, items_path
    )
    return OnlineReasons(directory, load_items(items_path), threads=None)


def history(model):
    ids = model.item_ids
    return [
        {"item_id": ids[0], "timestamp": 1, "action": "complete", "watch_ms": 9000, "duration_ms": 9000},
        {"item_id": ids[1], "timestamp": 2, "action": "dislike", "reason": "topic", "true_reason": "topic"},
        {"item_id": ids[2], "timestamp": 3, "action": "dislike", "reason": None, "true_reason": "quality"},
        {"item_id": ids[3], "timestamp": 4, "action": "view", "watch_ms": 100, "duration_ms": 60_000,
         "true_reason": "creator"},
    ]  # fmt: skip


def test_each_arm_shows_the_reasons_it_should(tiny_export, reasons):
    model = ExportedModel(tiny_export)
    shown = {}
    for arm in ("item_only", "stated", "predicted", "oracle"):
        recorder = Recorder(model)
        wrapped = ReasonArm(recorder, arm, reasons if arm == "predicted" else None, threshold=0.7)
        wrapped.rank([history(model)], 3, np.zeros(1, np.int64))
        (seen,) = recorder.seen[0]
        assert all("true_reason" not in e for e in seen)  # hidden from every ranker
        shown[arm] = [(e.get("reason"), e.get("reason_source")) for e in seen]
        if arm == "predicted":
            assert seen[2]["reason_confidence"] == pytest.approx(0.8, abs=1e-4)
            # The reasonless dislike got "creator" (acted on: 0.8 >= 0.7) but its truth is quality.
            assert wrapped.counts == {
                "predicted": 1, "acted": 1, "acted_right": 0, "acted_wrong": 1,
                "wrong_liked_creator": 0, "wrong_liked_category": 0,
            }  # fmt: skip
    assert shown["item_only"] == [(None, None)] * 4
    assert shown["stated"] == [(None, None), ("topic", "stated"), (None, None), (None, None)]
    assert shown["predicted"] == [(None, None), ("topic", "stated"), ("creator", "predicted"), (None, None)]
    # The oracle gives every explicit negative its true reason; skips stay as they are.
    assert shown["oracle"] == [(None, None), ("topic", "stated"), ("quality", "stated"), (None, None)]


def test_a_prediction_is_made_once_and_remembered(tiny_export, reasons):
    model = ExportedModel(tiny_export)
    wrapped = ReasonArm(Recorder(model), "predicted", reasons, threshold=0.7)
    for _ in range(3):
        wrapped.rank([history(model)], 3, np.zeros(1, np.int64))
    assert wrapped.counts["predicted"] == 1


def test_the_four_arms_run_in_the_closed_loop(tiny_data, tiny_export, reasons):
    # The tiny world states every dislike's reason, so predictions come from skips here.
    reasons = OnlineReasons(reasons.model_dir, reasons.items, label_skips=True, threads=None)
    raw = os.path.join(os.path.dirname(tiny_data), "raw")
    world = World.from_raw(raw)
    config = ClosedLoopConfig(num_users=15, steps=4, slate_size=5, seed=2)
    start = logged_histories(raw, sample_users(world, config))
    model = ExportedModel(tiny_export)
    results = {}
    for arm in ("item_only", "stated", "predicted", "oracle"):
        ranker = RecommenderRanker.with_filters(model, config=RecommenderConfig(predicted_threshold=0.7))
        wrapped = ReasonArm(ranker, arm, reasons if arm == "predicted" else None, threshold=0.7)
        results[arm] = story(world, wrapped, start, config)
        if arm == "predicted":
            assert wrapped.counts["predicted"] > 0
            assert wrapped.counts["acted"] == wrapped.counts["acted_right"] + wrapped.counts["acted_wrong"]
    assert all(0 <= r["dislike_rate"]["mean"] <= 1 for r in results.values())
