"""Exposure features from a literal history: every number by hand, and the vector's layout."""

import math

import numpy as np
import pytest

from ntr.reasons.features import (
    DIM,
    FEATURE_DIM,
    NUMERIC_FIELDS,
    exposure_features,
    exposure_numbers,
    item_description,
)

ITEMS = {
    "a": {
        "item_id": "a",
        "creator_id": "c1",
        "categories": ["comedy"],
        "text": "epic comedy vlog",
        "duration_ms": 30_000,
    },
    "b": {
        "item_id": "b",
        "creator_id": "c2",
        "categories": ["music", "dance"],
        "text": "calm music session",
        "duration_ms": 60_000,
    },  # fmt: skip
    "c": {
        "item_id": "c",
        "creator_id": "c3",
        "categories": ["news"],
        "text": "daily news tips you won't believe",
        "duration_ms": 20_000,
    },  # fmt: skip
    "d": {
        "item_id": "d",
        "creator_id": "c1",
        "categories": ["comedy"],
        "text": "crazy comedy story",
        "duration_ms": 40_000,
    },
}


def ev(item, action, watch=None, duration=None, reason=None):
    return {"item_id": item, "action": action, "watch_ms": watch, "duration_ms": duration, "reason": reason}


HISTORY = [
    ev("a", "like", 30_000, 30_000),  # positive: c1, comedy
    ev("b", "complete", 60_000, 60_000),  # positive: c2, music + dance
    ev("d", "view", 1_000, 40_000),  # skip (under 3 s): c1, comedy
    ev("c", "dislike", 2_000, 20_000, "quality"),
    ev("c", "hide_creator", 1_000, 20_000),  # default reason: creator
    ev("zzz", "like", 10_000, 10_000),  # unknown item: ignored
    ev("a", "not_interested", 5_000, 30_000),  # default reason: topic (comedy, creator c1)
]


def unit(*axes):
    v = np.zeros(DIM, np.float32)
    for axis in axes:
        v[axis] = 1.0
    return v / np.linalg.norm(v)


VECTORS = {"a": unit(0), "b": unit(1), "c": unit(2), "d": unit(0, 1)}


def test_numbers_of_a_literal_history():
    # Item d: creator c1, primary (and only) topic comedy. Known shows: a b d c c a.
    n, pools = exposure_numbers(HISTORY, "d", ITEMS)
    watch = {"a": 1.0, "b": 1.0, "d": 1_000 / 40_000, "c1": 0.1, "c2": 0.05, "a2": 5_000 / 30_000}
    c1 = (watch["a"] + watch["d"] + watch["a2"]) / 3  # the shows of c1 / comedy: a, d, a
    want = {
        "shown": 6,
        "positive_share": 2 / 6,
        "skip_share": 1 / 6,
        "explicit_share": 3 / 6,
        "watch_ratio": sum(watch.values()) / 6,
        "unstated_share": 0.0,  # every explicit negative has a reason (stated or implied)
        "stated_topic": 1 / 3,
        "stated_creator": 1 / 3,
        "stated_quality": 1 / 3,
        "stated_repetitive": 0.0,
        "stated_offensive": 0.0,
        "stated_unknown": 0.0,
        **{f"{p}_shown": 3 for p in ("creator", "topic", "primary")},
        **{f"{p}_likes": 1 for p in ("creator", "topic", "primary")},
        **{f"{p}_skips": 1 for p in ("creator", "topic", "primary")},
        **{f"{p}_explicit": 1 for p in ("creator", "topic", "primary")},
        **{f"{p}_watch": c1 for p in ("creator", "topic", "primary")},
        "creator_dislikes": 0,  # a's not_interested says topic, not creator
        "topic_dislikes": 1,
        "creator_follows": 0,
        "creator_skip_rate": 1 / 3,
        "primary_skip_rate": 1 / 3,
        "creator_like_share": 1 / 2,
        "primary_like_share": 1 / 2,
        "primary_skip_share": 1.0,
        "item_seen": 1,
        "repeats": 3,  # a, d, a among the last 10
        "repeats_half": 2,  # d, a among the last 5
        "run": 1,  # a right before; c before it
        "duration": math.log1p(40.0),
    }
    assert {k: v for k, v in n.items() if not k.startswith("sim_")} == pytest.approx(want)
    assert pools == {
        "liked": ["a", "b"],
        "skipped": ["d"],
        "disliked": ["c", "c", "a"],
        "recent": ["a", "b", "d", "c", "c", "a"],
    }


def test_feature_vector_layout_and_cosines():
    features, n = exposure_features(HISTORY, "d", ITEMS, VECTORS)
    assert features.shape == (FEATURE_DIM,) and features.dtype == np.float32
    np.testing.assert_array_equal(features[:DIM], VECTORS["d"])
    numeric = dict(zip(NUMERIC_FIELDS, features[DIM:], strict=True))
    assert numeric["shown"] == pytest.approx(math.log1p(6))  # counts enter as log1p
    assert numeric["skip_share"] == pytest.approx(1 / 6)  # shares as they are
    # d = (e0 + e1)/sqrt2. liked mean (e0 + e1)/2 and skipped d: cosine 1. disliked mean
    # (2 e2 + e0)/3: (1/sqrt2)(1/3) / (sqrt5/3) = 1/sqrt10. recent a b d c c a:
    # (2 + 1/sqrt2) e0 + (1 + 1/sqrt2) e1 + 2 e2.
    r = np.array([2 + 2**-0.5, 1 + 2**-0.5, 2.0])
    want_recent = (r[0] + r[1]) / math.sqrt(2) / np.linalg.norm(r)
    assert n["sim_liked"] == pytest.approx(1.0, abs=1e-6)
    assert n["sim_skipped"] == pytest.approx(1.0, abs=1e-6)
    assert n["sim_disliked"] == pytest.approx(1 / math.sqrt(10), abs=1e-6)
    assert n["sim_recent"] == pytest.approx(want_recent, abs=1e-6)


def test_empty_history_reads_only_the_item():
    features, n = exposure_features([ev("zzz", "like", 1, 1)], "c", ITEMS, VECTORS)
    assert n["duration"] == pytest.approx(math.log1p(20.0))
    assert all(v == 0 for k, v in n.items() if k != "duration")
    np.testing.assert_array_equal(features[:DIM], VECTORS["c"])


def test_item_description():
    assert item_description(ITEMS["b"]) == "calm music session. creator c2. categories: music, dance. 60 s."
    assert item_description({"item_id": "x"}) == ". creator ?. categories: none. unknown length."
