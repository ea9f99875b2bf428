"""Text the reason model reads: a profile of the user (the "profile agent") built from their
history, and a description of the item shown (the "item agent").

The profile says what the user engages with (top categories and creators), what they disliked
recently and why, which creators and topics they disliked, how often they skip and what, and
what they watched most recently (repetition). Everything comes from the event history and the
catalogue; nothing hidden in the synthetic world is used.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from ntr.pipelines.events import ACTION_DEFAULT_REASON, Label, LabelConfig, label_event


@dataclasses.dataclass(frozen=True)
class ProfileConfig:
    """Attributes:
    top_categories / top_creators: how many liked ones are named.
    recent_dislikes: how many of the latest explicit negatives are spelled out.
    recent_window: events counted as "recent" for the repetition line.
    label: the skip / positive rule (the pipeline's defaults).
    """

    top_categories: int = 3
    top_creators: int = 3
    recent_dislikes: int = 3
    recent_window: int = 10
    label: LabelConfig = dataclasses.field(default_factory=LabelConfig)


def _ranked(counter: Counter, n: int) -> str:
    # Ties by name, so the same history always gives the same text.
    return ", ".join(
        f"{name} ({count})" for name, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    )


def user_profile(history: list[dict], items: dict[str, dict], config: ProfileConfig | None = None) -> str:
    """The profile text of a user.

    Args:
      history: canonical events, oldest first (item_id, action, watch_ms, duration_ms, reason).
      items: item id -> catalogue row (creator_id, categories, text); unknown ids are skipped.
      config: sizes and the label rule.

    Returns:
      One paragraph, e.g. "likes: comedy (5), music (2). favourite creators: c4 (3). ...".
    """
    config = config or ProfileConfig()
    liked_categories, liked_creators, skipped_categories = Counter(), Counter(), Counter()
    disliked_creators, disliked_topics, dislikes = set(), set(), []
    shown, skips = 0, 0
    recent = Counter()
    known = [e for e in history if e["item_id"] in items]
    for position, event in enumerate(known):
        item = items[event["item_id"]]
        categories = item.get("categories") or []
        label, action = label_event(
            event["action"], event.get("watch_ms"), event.get("duration_ms"), config.label
        )
        shown += 1
        if position >= len(known) - config.recent_window and categories:
            recent[categories[0]] += 1
        if label is Label.POSITIVE:
            liked_categories.update(categories)
            if item.get("creator_id"):
                liked_creators[item["creator_id"]] += 1
        elif label is Label.IMPLICIT_NEGATIVE:
            skips += 1
            skipped_categories.update(categories[:1])
        elif label is Label.EXPLICIT_NEGATIVE:
            reason = event.get("reason") or ACTION_DEFAULT_REASON.get(action)
            dislikes.append((item, reason))
            if reason == "creator" or action == "hide_creator":
                disliked_creators.add(item.get("creator_id") or "?")
            if reason in ("topic", "repetitive") and categories:
                disliked_topics.add(categories[0])
    if not shown:
        return "new user: no history."
    parts = []
    if liked_categories:
        parts.append(f"likes: {_ranked(liked_categories, config.top_categories)}.")
    if liked_creators:
        parts.append(f"favourite creators: {_ranked(liked_creators, config.top_creators)}.")
    if dislikes:
        spelled = [
            f"{item.get('creator_id') or '?'} '{item.get('text', '')}' ({reason or 'no reason'})"
            for item, reason in dislikes[-config.recent_dislikes :]
        ]
        parts.append(f"disliked {len(dislikes)}, recently: " + "; ".join(spelled) + ".")
    else:
        parts.append("no dislikes.")
    if disliked_creators:
        parts.append(f"disliked creators: {', '.join(sorted(disliked_creators))}.")
    if disliked_topics:
        parts.append(f"disliked topics: {', '.join(sorted(disliked_topics))}.")
    parts.append(f"skips {round(100 * skips / shown)}% of {shown} videos")
    parts[-1] += f", most skipped: {_ranked(skipped_categories, 2)}." if skipped_categories else "."
    if recent:
        parts.append(f"recently watched: {_ranked(recent, 3)}.")
    return " ".join(parts)


def item_description(item: dict) -> str:
    """The item text: title/tags, creator, categories and length."""
    categories = ", ".join(item.get("categories") or []) or "none"
    length = f"{round(item['duration_ms'] / 1000)} s" if item.get("duration_ms") else "unknown length"
    creator = item.get("creator_id") or "?"
    return f"{item.get('text', '')}. creator {creator}. categories: {categories}. {length}."


def relation_counts(
    history: list[dict], item: dict, items: dict[str, dict], config: ProfileConfig | None = None
) -> dict[str, int]:
    """How the user's history relates to this item: likes and dislikes of its creator and
    topic, and how many of the last `recent_window` shows had its primary topic."""
    config = config or ProfileConfig()
    creator = item.get("creator_id") or ""
    topics = set(item.get("categories") or [])
    primary = (item.get("categories") or [None])[0]
    counts = dict.fromkeys(
        ("creator_dislikes", "creator_likes", "topic_dislikes", "topic_likes", "repeats"), 0
    )
    known = [e for e in history if e["item_id"] in items]
    for position, event in enumerate(known):
        other = items[event["item_id"]]
        label, action = label_event(
            event["action"], event.get("watch_ms"), event.get("duration_ms"), config.label
        )
        same_creator = bool(creator) and other.get("creator_id") == creator
        same_topic = bool(topics & set(other.get("categories") or []))
        recent = position >= len(known) - config.recent_window
        if recent and primary and (other.get("categories") or [None])[0] == primary:
            counts["repeats"] += 1
        if label is Label.POSITIVE:
            counts["creator_likes"] += same_creator
            counts["topic_likes"] += same_topic
        elif label is Label.EXPLICIT_NEGATIVE:
            reason = event.get("reason") or ACTION_DEFAULT_REASON.get(action)
            counts["creator_dislikes"] += same_creator and (reason == "creator" or action == "hide_creator")
            counts["topic_dislikes"] += same_topic and reason in ("topic", "repetitive")
    return counts


def relation_sentence(counts: dict[str, int], config: ProfileConfig | None = None) -> str:
    """`relation_counts` in words.

    The profile and the item are embedded separately; this sentence carries their match
    (has the user disliked or liked this creator or topic before, how much of this topic they
    just watched), which a bi-encoder cannot see.
    """
    config = config or ProfileConfig()
    c = counts
    return (
        f"this creator: disliked {c['creator_dislikes']} times, liked {c['creator_likes']} times. "
        f"this topic: disliked {c['topic_dislikes']} times, liked {c['topic_likes']} times. "
        f"same topic in the last {config.recent_window}: {c['repeats']}."
    )


def relation_text(
    history: list[dict], item: dict, items: dict[str, dict], config: ProfileConfig | None = None
) -> str:
    """The relation sentence of `item` given `history`."""
    return relation_sentence(relation_counts(history, item, items, config), config)


def exposure_texts(
    events: list[dict], k: int, items: dict[str, dict], history_len: int, config: ProfileConfig | None = None
) -> dict:
    """What the reason model reads about exposure `events[k]`, from the `history_len` events before it.

    Returns:
      {"profile", "item", "relation"} texts and "counts" (the `relation_counts` they came from).
    """
    history, item = events[max(0, k - history_len) : k], items[events[k]["item_id"]]
    counts = relation_counts(history, item, items, config)
    return {
        "profile": user_profile(history, items, config),
        "item": item_description(item),
        "relation": relation_sentence(counts, config),
        "counts": counts,
    }
