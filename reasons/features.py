"""What the reason model reads about one exposure: the item, the user's history before it, and
how the two relate, as one vector (no per-event transformer pass).

The item is its catalogue vector (MiniLM of `item_description`, embedded once per catalogue
item, `reasons.catalogue`). The user is numbers from the log: how much they skip and dislike,
how much they watch, which reasons they stated before. The relation is counts of what the user
did with this item's creator, its topics and its primary topic before (shown, engaged,
skipped, disliked, disliked for that reason, followed, mean watch ratio), whether they saw the
item itself, how much of its primary topic they just watched, and the cosines of the item to
the mean catalogue vectors of what they liked, skipped, disliked and watched in the last
`recent_window` shows. Everything comes from the event history and the catalogue; nothing
hidden in the synthetic world is used.

An earlier version read a MiniLM embedding of a profile *text* per exposure (~24 ms on one CPU
thread, 363 s of a cold training run); these features cost about half a millisecond per
exposure and are more accurate (BENCHMARKS.md, reason model). Feeding the pooled vectors
themselves, not only their cosines, was tried and lowered held-out accuracy.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ntr.pipelines.events import ACTION_DEFAULT_REASON, REASONS, Label, LabelConfig, label_event

DIM = 384  # catalogue vector size (all-MiniLM-L6-v2)

USER_FIELDS = (
    "shown",
    "positive_share",
    "skip_share",
    "explicit_share",
    "watch_ratio",
    "unstated_share",
) + tuple(f"stated_{r}" for r in REASONS)
RELATION_FIELDS = (
    "creator_shown",
    "creator_likes",
    "creator_skips",
    "creator_explicit",
    "creator_dislikes",
    "creator_follows",
    "creator_watch",
    "topic_shown",
    "topic_likes",
    "topic_skips",
    "topic_explicit",
    "topic_dislikes",
    "topic_watch",
    "primary_shown",
    "primary_likes",
    "primary_skips",
    "primary_explicit",
    "primary_watch",
    "creator_skip_rate",
    "primary_skip_rate",
    "creator_like_share",
    "primary_like_share",
    "primary_skip_share",
    "item_seen",
    "repeats",
    "repeats_half",
    "run",
    "duration",
    "sim_liked",
    "sim_skipped",
    "sim_disliked",
    "sim_recent",
)
NUMERIC_FIELDS = USER_FIELDS + RELATION_FIELDS
FEATURE_DIM = DIM + len(NUMERIC_FIELDS)
# Fields that count events; they enter the model as log1p(count).
COUNT_FIELDS = frozenset(
    {"shown", "item_seen", "repeats", "repeats_half", "run"}
    | {
        f
        for f in RELATION_FIELDS
        if f.endswith(("_shown", "_likes", "_skips", "_explicit", "_dislikes", "_follows"))
    }
)


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Attributes:
    recent_window: shows counted as "recent" (the recent cosine, repeats of the topic).
    label: the skip / positive rule (the pipeline's defaults).
    """

    recent_window: int = 10
    label: LabelConfig = dataclasses.field(default_factory=LabelConfig)


def item_description(item: dict) -> str:
    """The item text that is embedded: title/tags, creator, categories and length."""
    categories = ", ".join(item.get("categories") or []) or "none"
    length = f"{round(item['duration_ms'] / 1000)} s" if item.get("duration_ms") else "unknown length"
    creator = item.get("creator_id") or "?"
    return f"{item.get('text', '')}. creator {creator}. categories: {categories}. {length}."


# Per label: the pool its items join, the share it counts towards, the suffix of its
# per-creator / per-topic / per-primary-topic counts.
_KINDS = {
    Label.POSITIVE: ("liked", "positive_share", "likes"),
    Label.IMPLICIT_NEGATIVE: ("skipped", "skip_share", "skips"),
    Label.EXPLICIT_NEGATIVE: ("disliked", "explicit_share", "explicit"),
}


def _mean(vectors: list[np.ndarray]) -> np.ndarray:
    return np.mean(vectors, axis=0) if vectors else np.zeros(DIM, np.float32)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else 0.0


def exposure_numbers(
    history: list[dict], item_id: str, items: dict[str, dict], config: FeatureConfig | None = None
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """The raw numbers of `NUMERIC_FIELDS` (counts as counts), and which history items each
    pooled vector averages.

    Args:
      history: canonical events before the exposure, oldest first (item_id, action, watch_ms,
        duration_ms, reason); events of items not in `items` are skipped.
      item_id: the item shown (must be in `items`).
      items: item id -> catalogue row (creator_id, categories, duration_ms).
      config: the recent window and the label rule.

    Returns:
      ({field: value} for every field of NUMERIC_FIELDS; the four `sim_*` cosines are 0 here
       and filled by `exposure_features`), {"liked" | "skipped" | "disliked" | "recent": [item ids]}).
    """
    config = config or FeatureConfig()
    item = items[item_id]
    creator = item.get("creator_id") or ""
    topics = set(item.get("categories") or [])
    primary = (item.get("categories") or [None])[0]
    n = dict.fromkeys(NUMERIC_FIELDS, 0.0)
    pools = {"liked": [], "skipped": [], "disliked": [], "recent": []}
    watch = {"all": [], "creator": [], "topic": [], "primary": []}
    stated = dict.fromkeys(REASONS, 0)
    known = [e for e in history if e["item_id"] in items]
    for position, event in enumerate(known):
        other = items[event["item_id"]]
        label, action = label_event(
            event["action"], event.get("watch_ms"), event.get("duration_ms"), config.label
        )
        same_creator = bool(creator) and other.get("creator_id") == creator
        same_topic = bool(topics & set(other.get("categories") or []))
        ratio = None
        if event.get("watch_ms") is not None and event.get("duration_ms"):
            ratio = min(event["watch_ms"] / event["duration_ms"], 1.0)
            watch["all"].append(ratio)
        from_end = len(known) - position  # 1 = the show right before the exposure
        same_primary = bool(primary) and (other.get("categories") or [None])[0] == primary
        n["item_seen"] += event["item_id"] == item_id
        if from_end <= config.recent_window:
            pools["recent"].append(event["item_id"])
            n["repeats"] += same_primary
            n["repeats_half"] += same_primary and from_end <= config.recent_window // 2
        scopes = (("creator", same_creator), ("topic", same_topic), ("primary", same_primary))
        for prefix, same in scopes:
            if same:
                n[f"{prefix}_shown"] += 1
                if ratio is not None:
                    watch[prefix].append(ratio)
        if label not in _KINDS:
            continue
        pool, share, suffix = _KINDS[label]
        pools[pool].append(event["item_id"])
        n[share] += 1
        for prefix, same in scopes:
            n[f"{prefix}_{suffix}"] += same
        if label is Label.POSITIVE:
            n["creator_follows"] += same_creator and action == "follow"
        elif label is Label.EXPLICIT_NEGATIVE:
            reason = event.get("reason") or ACTION_DEFAULT_REASON.get(action)
            if reason in stated:
                stated[reason] += 1
            n["creator_dislikes"] += same_creator and reason == "creator"
            n["topic_dislikes"] += same_topic and reason in ("topic", "repetitive")
    # The run of shows of the same primary topic right before the exposure.
    for event in reversed(known):
        if not primary or (items[event["item_id"]].get("categories") or [None])[0] != primary:
            break
        n["run"] += 1
    shown = len(known)
    n["shown"] = shown
    for field, part, whole in (
        ("creator_skip_rate", n["creator_skips"], n["creator_shown"]),
        ("primary_skip_rate", n["primary_skips"], n["primary_shown"]),
        ("creator_like_share", n["creator_likes"], n["positive_share"]),
        ("primary_like_share", n["primary_likes"], n["positive_share"]),
        ("primary_skip_share", n["primary_skips"], n["skip_share"]),
    ):
        n[field] = part / whole if whole else 0.0
    for share in ("positive_share", "skip_share", "explicit_share"):
        n[share] = n[share] / shown if shown else 0.0
    explicit = sum(stated.values())
    for reason, count in stated.items():
        n[f"stated_{reason}"] = count / explicit if explicit else 0.0
    n_explicit = n["explicit_share"] * shown
    n["unstated_share"] = 1.0 - explicit / n_explicit if n_explicit else 0.0
    for key, field in (
        ("all", "watch_ratio"),
        ("creator", "creator_watch"),
        ("topic", "topic_watch"),
        ("primary", "primary_watch"),
    ):
        n[field] = float(np.mean(watch[key])) if watch[key] else 0.0
    n["duration"] = math.log1p(item["duration_ms"] / 1000) if item.get("duration_ms") else 0.0
    return n, pools


def exposure_features(
    history: list[dict], item_id: str, items: dict[str, dict], vectors, config: FeatureConfig | None = None
) -> tuple[np.ndarray, dict[str, float]]:
    """The model input for showing `item_id` after `history`.

    Args:
      history: canonical events before the exposure, oldest first.
      item_id: the item shown (must be in `items`).
      items: the catalogue by item id.
      vectors: item id -> [384] catalogue vector (`reasons.catalogue.ItemVectors`).
      config: the recent window and the label rule.

    Returns:
      ([FEATURE_DIM] float32: the item's vector [384], then NUMERIC_FIELDS with counts as
      log1p), and the raw numbers ({field: value}).
    """
    numbers, pools = exposure_numbers(history, item_id, items, config)
    item_vector = vectors[item_id]
    for name, ids in pools.items():
        numbers[f"sim_{name}"] = _cosine(item_vector, _mean([vectors[i] for i in ids]))
    numeric = np.array(
        [math.log1p(numbers[f]) if f in COUNT_FIELDS else numbers[f] for f in NUMERIC_FIELDS], np.float32
    )
    return np.concatenate([item_vector, numeric]), numbers


def features_at(
    events: list[dict],
    k: int,
    items: dict[str, dict],
    vectors,
    history_len: int,
    config: FeatureConfig | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """`exposure_features` of exposure `events[k]`, read from the `history_len` events before it."""
    return exposure_features(
        events[max(0, k - history_len) : k], events[k]["item_id"], items, vectors, config
    )
