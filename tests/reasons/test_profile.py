"""Profile and item text from a literal history (the exact strings the reason model reads)."""

from ntr.reasons.profile import ProfileConfig, item_description, user_profile

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


def test_profile_of_a_literal_history():
    history = [
        ev("a", "like", 30_000, 30_000),  # positive: comedy, c1
        ev("b", "complete", 60_000, 60_000),  # positive: music + dance, c2
        ev("d", "view", 1_000, 40_000),  # skip (under 3 s): comedy
        ev("c", "dislike", 2_000, 20_000, "quality"),
        ev("c", "hide_creator", 1_000, 20_000),  # default reason: creator
        ev("b", "not_interested", 5_000, 60_000),  # default reason: topic -> music
        ev("zzz", "like", 10_000, 10_000),  # unknown item: ignored
        ev("d", "like", 40_000, 40_000),
    ]
    text = user_profile(history, ITEMS, ProfileConfig(recent_dislikes=2, recent_window=3))
    assert text == (
        "likes: comedy (2), dance (1), music (1). "
        "favourite creators: c1 (2), c2 (1). "
        "disliked 3, recently: c3 'daily news tips you won't believe' (creator); "
        "c2 'calm music session' (topic). "
        "disliked creators: c3. "
        "disliked topics: music. "
        "skips 14% of 7 videos, most skipped: comedy (1). "
        "recently watched: comedy (1), music (1), news (1)."
    )


def test_empty_and_unknown_histories():
    assert user_profile([], ITEMS) == "new user: no history."
    assert user_profile([ev("nope", "like", 1, 1)], ITEMS) == "new user: no history."
    # A 5 s view of a 30 s video is neither a skip nor positive (NEUTRAL): only counts as shown.
    neutral = user_profile([ev("a", "view", 5_000, 30_000)], ITEMS)
    assert neutral == "no dislikes. skips 0% of 1 videos. recently watched: comedy (1)."


def test_item_description():
    assert item_description(ITEMS["b"]) == "calm music session. creator c2. categories: music, dance. 60 s."
    assert item_description({"item_id": "x"}) == ". creator ?. categories: none. unknown length."


def test_relation_text_of_a_literal_history():
    from ntr.reasons.profile import relation_text  # noqa: PLC0415

    history = [
        ev("a", "like", 30_000, 30_000),
        ev("c", "hide_creator", 1_000, 20_000),
        ev("d", "dislike", 1_000, 40_000, "topic"),
    ]
    # Item d: creator c1 (liked once via a, never disliked as a creator); topic comedy (liked
    # once, disliked once with reason topic); comedy is the primary topic of 2 of the last 10.
    assert relation_text(history, ITEMS["d"], ITEMS) == (
        "this creator: disliked 0 times, liked 1 times. this topic: disliked 1 times, liked 1 times. "
        "same topic in the last 10: 2."
    )
    assert relation_text(history, ITEMS["c"], ITEMS).startswith(
        "this creator: disliked 1 times, liked 0 times."
    )
