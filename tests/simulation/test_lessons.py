"""`lesson_in_log` on a hand-made log, every figure by hand."""

import pytest

from ntr.simulation.lessons import lesson_in_log

ITEMS = [
    {"item_id": "a1", "creator_id": "A", "categories": ["x"]},
    {"item_id": "a2", "creator_id": "A", "categories": ["x"]},
    {"item_id": "b1", "creator_id": "B", "categories": ["y"]},
    {"item_id": "b2", "creator_id": "B", "categories": ["x", "y"]},
]


def ev(user, item, t, action, watch=None, duration=None):
    return {"user_id": user, "item_id": item, "timestamp": t, "action": action, "watch_ms": watch,
            "duration_ms": duration}  # fmt: skip


def test_lesson_by_hand():
    events = [
        # u1: like b1, dislike a1, then a2 skipped (1 s of 30 s), b2 liked, b1 viewed (neutral).
        ev("u1", "b1", 1, "like"),
        ev("u1", "a1", 2, "dislike"),
        ev("u1", "a2", 3, "view", 1000, 30000),
        ev("u1", "b2", 4, "like"),
        ev("u1", "b1", 5, "view"),
        # u2: no dislike; an unknown item is ignored.
        ev("u2", "a1", 1, "like"),
        ev("u2", "zz", 2, "like"),
    ]
    r = lesson_in_log(events, ITEMS, window=2)
    assert r["events"] == 6 and r["dislikes"] == 1
    # Next 2 after the dislike: a2 (same creator, same primary category), b2 (primary y? no: x).
    assert r["next_same_creator"] == pytest.approx(1 / 2)
    assert r["next_same_category"] == pytest.approx(2 / 2)
    # Later exposures to creator A: a2 (skip). To category x: a2 (skip), b2 (positive).
    assert r["later"]["creator"]["exposures"] == 1 and r["later"]["creator"]["per_dislike"] == 1.0
    assert r["later"]["creator"]["labels"]["IMPLICIT_NEGATIVE"] == 1.0
    assert r["later"]["category"]["exposures"] == 2
    assert r["later"]["category"]["labels"]["POSITIVE"] == 0.5
    # Others: u1's b1 like, the dislike itself, b1 view (neutral); u2's a1 like.
    assert r["others"]["exposures"] == 4
    assert r["others"]["labels"]["POSITIVE"] == 0.5 and r["others"]["labels"]["EXPLICIT_NEGATIVE"] == 0.25


def test_no_dislikes():
    r = lesson_in_log([ev("u", "a1", 1, "like")], ITEMS)
    assert r["dislikes"] == 0 and r["next_same_creator"] is None
    assert r["later"]["creator"]["labels"]["POSITIVE"] is None


def test_lesson_ratios_by_hand():
    import numpy as np

    from ntr.simulation.lessons import lesson_ratios

    histories = [
        [  # dislike a1 (creator A, category x); later: a2 skipped (creator A, x), b2 liked (x),
            # a1 liked again (the item itself, A, x), b1 liked (other).
            ev("u1", "a1", 1, "dislike"),
            ev("u1", "a2", 2, "view", 1000, 30000),
            ev("u1", "b2", 3, "like"),
            ev("u1", "a1", 4, "like"),
            ev("u1", "b1", 5, "like"),
        ],
        [ev("u2", "a1", 1, "like")],  # no dislike: not counted
    ]
    r = lesson_ratios(histories, ITEMS, np.random.default_rng(0), resamples=50)
    # others: b1 positive -> rate 1. item: a1 (1 of 1). creator A: a2 skip, a1 like (1 of 2).
    # category x: a2, b2, a1 (2 of 3).
    assert r["others"] == {"exposures": 1, "positive_rate": 1.0}
    assert r["item"]["value"] == pytest.approx(0.0) and r["item"]["exposures"] == 1
    assert r["creator"]["value"] == pytest.approx(-0.5) and r["creator"]["exposures"] == 2
    assert r["category"]["value"] == pytest.approx(2 / 3 - 1) and r["category"]["exposures"] == 3
    # One history: every bootstrap draw is the same one, so the interval is a point.
    assert r["creator"]["ci95"] == pytest.approx([-0.5, -0.5]) and r["creator"]["se"] == pytest.approx(0.0)


def test_lesson_ratios_by_granularity():
    import numpy as np

    from ntr.pipelines.events import Granularity
    from ntr.simulation.lessons import lesson_ratios

    history = [
        dict(ev("u1", "a1", 1, "dislike"), reason="creator"),  # counts for CREATOR only
        ev("u1", "b1", 2, "hide_creator"),  # no reason: hide_creator implies creator
        ev("u1", "a2", 3, "like"),  # creator A, category x
        ev("u1", "b2", 4, "view", 1000, 30000),  # creator B, categories x, y: a skip
        dict(ev("u1", "a1", 5, "dislike"), reason="quality"),  # item-level
        ev("u1", "a2", 6, "like"),
    ]
    rng = np.random.default_rng(0)
    creator = lesson_ratios([history], ITEMS, rng, resamples=10, granularity=Granularity.CREATOR)
    assert creator["dislikes"] == 2
    # Creators A and B disliked: a2 (like), b2 (skip), a2 (like) -> 2 of 3; nothing else is left.
    assert creator["creator"]["exposures"] == 3 and creator["others"]["exposures"] == 0
    item = lesson_ratios([history], ITEMS, rng, resamples=10, granularity=Granularity.ITEM)
    # Only the quality dislike of a1 counts: later a2 (creator A, category x) liked.
    assert item["dislikes"] == 1 and item["creator"]["exposures"] == 1 and item["item"]["exposures"] == 0
    assert (
        lesson_ratios([history], ITEMS, rng, resamples=10, granularity=Granularity.CATEGORY)["dislikes"] == 0
    )
