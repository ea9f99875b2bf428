"""Closed loop: metrics by hand, choice models, world reconstruction, and runs on the tiny world."""

import json
import os
import types

import numpy as np
import pytest

from ntr.retrieval.exported import ExportedModel
from ntr.simulation.closed_loop import (
    ClosedLoopConfig,
    LogitChoice,
    LoopMetrics,
    TopChoice,
    World,
    logged_histories,
    sample_users,
    story,
)
from ntr.simulation.counterfactual import SHARES, CounterfactualConfig, run_counterfactual
from ntr.simulation.rankers import ModelRanker, RecommenderRanker
from ntr.simulation.world import build_world, scaled_config, simulate


def response(explicit, label, watch):
    return types.SimpleNamespace(
        explicit=np.array(explicit), label=np.array(label, object), watch=np.array(watch)
    )


def test_loop_metrics_by_hand():
    metrics = LoopMetrics(num_users=2, steps=3)
    a, b = frozenset({1}), frozenset({2})
    # Step 0: user 0 dislikes an item of creator 7 (category {1}); user 1 skips.
    step0 = response([True, False], ["EXPLICIT_NEGATIVE", "IMPLICIT_NEGATIVE"], [1000, 500])
    metrics.record(0, np.array([[7, 8], [9, 9]]), [[a, b], [b, b]], np.array([7, 9]), [a, b], step0)
    # Step 1: user 0's slate shows category {1} again (not creator 7); user 0 dislikes creator 7 again.
    metrics.record(1, np.array([[5, 7], [9, 9]]), [[b, a], [b, b]], np.array([7, 9]), [a, b],
                   response([True, False], ["EXPLICIT_NEGATIVE", "POSITIVE"], [2000, 30000]))  # fmt: skip
    # Step 2: nothing disliked; creator 7 shown to user 0 again.
    metrics.record(2, np.array([[7, 5], [9, 9]]), [[b, b], [b, b]], np.array([5, 9]), [b, b],
                   response([False, False], ["POSITIVE", "POSITIVE"], [4000, 6000]))  # fmt: skip
    s = metrics.summary()
    assert s["dislike_rate"]["mean"] == pytest.approx((2 / 3 + 0) / 2)
    assert s["skip_rate"]["mean"] == pytest.approx((0 + 1 / 3) / 2)
    assert s["watch_seconds"]["mean"] == pytest.approx((7 / 3 + 36.5 / 3) / 2)
    assert s["repeated_creator_dislike_rate"] == 0.5  # the second dislike of creator 7
    # Creator 7 disliked at step 0: shown at step 1 (1 step). Disliked at step 1: shown at step 2.
    assert s["creator_shown_again"] == {
        "dislikes": 2, "shown_again": 2, "share_never_shown_again": 0.0, "mean_steps_when_shown_again": 1.0
    }  # fmt: skip
    # Category {1}: step-0 dislike comes back at step 1; step-1 dislike never within the horizon.
    assert (
        s["category_shown_again"]["shown_again"] == 1
        and s["category_shown_again"]["share_never_shown_again"] == 0.5
    )
    assert s["curves"]["dislike_rate"] == [0.5, 0.5, 0.0]
    assert s["per_user"]["dislike_rate"] == [pytest.approx(2 / 3), 0.0]
    assert s["per_user"]["watch_seconds"] == [pytest.approx(7 / 3), pytest.approx(36.5 / 3)]


def test_choice_models():
    rng = np.random.default_rng(0)
    slate = np.array([[4, 2, 3]])
    world = types.SimpleNamespace(
        catalogue=types.SimpleNamespace(
            categories=np.array([[0, -1], [1, -1], [1, -1], [0, -1], [0, -1]]), creator=np.arange(5)
        ),  # fmt: skip
        users=types.SimpleNamespace(
            cat_affinity=np.array([[-5.0, 5.0]]), fav_creators=np.array([[-1, -1, -1, -1]])
        ),
    )
    assert TopChoice().choose(np.array([0]), slate, world, rng).tolist() == [4]
    # Category 1 is loved and 0 hated: the logit choice picks item 2, the only one in category 1.
    picks = [int(LogitChoice(0.5).choose(np.array([0]), slate, world, rng)[0]) for _ in range(50)]
    assert set(picks) == {2}


def test_world_is_rebuilt_from_raw(tiny_data):
    raw = os.path.join(os.path.dirname(tiny_data), "raw")
    world = World.from_raw(raw)
    log = simulate(scaled_config("tiny", seed=3))
    assert list(world.catalogue.item_ids) == list(log.catalogue.item_ids)
    np.testing.assert_array_equal(world.users.hated_creators, build_world(log.config)[2].hated_creators)
    users = sample_users(world, ClosedLoopConfig(num_users=10))
    start = logged_histories(raw, users)
    with open(os.path.join(raw, "events.jsonl")) as handle:
        rows = [json.loads(line) for line in handle]
    for user in users:
        want = sorted((r for r in rows if r["user_id"] == f"u{user}"), key=lambda r: r["timestamp"])
        assert start[int(user)] == want  # true_reason kept for the oracle arm; no ranker reads it


def test_runs_on_the_tiny_world_and_repeats_exactly(tiny_data, tiny_model):
    raw = os.path.join(os.path.dirname(tiny_data), "raw")
    world = World.from_raw(raw)
    config = ClosedLoopConfig(num_users=20, steps=6, slate_size=5, seed=4)
    start = logged_histories(raw, sample_users(world, config))
    model = ExportedModel(tiny_model("ntr"))
    first = story(world, ModelRanker(model, exclude_consumed=True), start, config)
    again = story(world, ModelRanker(model, exclude_consumed=True), start, config)
    assert first == again
    assert len(first["curves"]["skip_rate"]) == 6 and 0 <= first["skip_rate"]["mean"] <= 1
    filtered = story(world, RecommenderRanker.with_filters(model), start, config)
    assert len(filtered["curves"]["watch_seconds"]) == 6


def test_positives_only_model_has_zero_responsiveness(tiny_data, tiny_model):
    """A model that cannot see negatives: both branches give the same query, so every share is
    unchanged and the interval is [0, 0]."""
    from ntr.retrieval.data import read_histories  # noqa: PLC0415

    model = ExportedModel(tiny_model("positives_only"))
    config = CounterfactualConfig(num_pairs=300, k=10, bootstrap=200, reasons=("creator", "topic", "skip"))
    result = run_counterfactual(ModelRanker(model), read_histories(tiny_data, "train"), config)
    for reason in config.reasons:
        for share in SHARES:
            r = result["reasons"][reason][share]
            assert r["value"] in (0.0, None) and (r["ci95"] is None or r["ci95"][0] <= 0 <= r["ci95"][1])


def test_serving_filters_remove_a_disliked_creator_entirely(tiny_data, tiny_model):
    from ntr.retrieval.data import read_histories  # noqa: PLC0415

    ranker = RecommenderRanker.with_filters(ExportedModel(tiny_model("ntr")))
    config = CounterfactualConfig(num_pairs=200, k=10, bootstrap=100, reasons=("creator", "topic", "quality"))
    result = run_counterfactual(ranker, read_histories(tiny_data, "train"), config)["reasons"]
    assert result["creator"]["creator"]["share_a"] > 0 and result["creator"]["creator"]["value"] == -1.0
    assert result["topic"]["category"]["value"] == -1.0
    # The filters drop consumed items, so X itself is never in branch A's list: nothing to measure.
    assert result["quality"]["item"]["value"] is None


def test_a_slate_the_filters_cannot_fill_is_topped_up(tiny_model):
    """A user who disliked (topic reason) items of every category leaves the service nothing to
    return; the simulated feed still shows k items: the filtered ones, unconsumed first."""
    model = ExportedModel(tiny_model("ntr"))
    ranker = RecommenderRanker.with_filters(model)
    first = {}
    for item in model.items:  # one item per category, each disliked for its topic
        for c in item.get("categories", []):
            first.setdefault(c, item["item_id"])
    history = [
        {"item_id": item_id, "timestamp": 100 + t, "action": "dislike", "reason": "topic"}
        for t, item_id in enumerate(sorted(set(first.values())))
    ]
    served = ranker.recommender.recommend(history, k=5).items
    assert len(served) < 5  # the service itself returns what the filters leave
    rows = ranker.rank([history], 5, np.zeros(1, np.int64))
    assert rows.shape == (1, 5) and len(set(rows[0].tolist())) == 5
    assert ranker.topped_up == 5 - len(served)
    disliked = {model.item_index[e["item_id"]] for e in history}
    assert len(model.items) - len(disliked) >= 5 and not disliked & set(rows[0].tolist())  # unconsumed first
