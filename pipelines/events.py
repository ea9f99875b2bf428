"""The canonical event schema: actions, labels, reasons and the skip rule.

Everything that reads or writes events (the synthetic world, the readers, the Beam pipeline,
later the model and the server) takes its vocabulary from here, so there is one definition of
what a `dislike` or a `skip` is.

An event is a dict with the columns of `EVENT_COLUMNS`:
`user_id: str`, `item_id: str`, `timestamp: int` (unix seconds), `action: str`,
`watch_ms: int | None`, `duration_ms: int | None`, `reason: str | None`; and the optional
logging columns of `LOGGING_COLUMNS`, None when a log does not carry them:
`is_random: bool | None` (shown uniformly at random, KuaiRand's `is_rand`) and
`propensity: float | None` (the logging policy's probability of showing the item).
"""

from __future__ import annotations

import dataclasses
import enum

EVENT_COLUMNS = ("user_id", "item_id", "timestamp", "action", "watch_ms", "duration_ms", "reason")
# What the logging system knew when it showed the item, for unbiased and off-policy evaluation.
# Kept apart from EVENT_COLUMNS: the service's event store never receives them.
LOGGING_COLUMNS = ("is_random", "propensity")
REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp", "action")
# Unix seconds after 2100-01-01 are almost surely milliseconds or garbage.
MAX_TIMESTAMP = 4_102_444_800


class Label(enum.IntEnum):
    """What an event says about the user's taste. The int values are stored in TFRecords."""

    NEUTRAL = 0
    POSITIVE = 1
    EXPLICIT_NEGATIVE = 2
    IMPLICIT_NEGATIVE = 3


POSITIVE_ACTIONS = ("view", "complete", "like", "share", "follow")
EXPLICIT_NEGATIVE_ACTIONS = ("dislike", "not_interested", "hide_creator", "report")
IMPLICIT_NEGATIVE_ACTIONS = ("skip",)
# Order fixes the action ids used by the model's action embedding; append only.
ACTIONS = POSITIVE_ACTIONS + EXPLICIT_NEGATIVE_ACTIONS + IMPLICIT_NEGATIVE_ACTIONS


class Granularity(enum.Enum):
    """What a disliked item's reason says should be suppressed."""

    ITEM = "item"
    CREATOR = "creator"
    CATEGORY = "category"


# Reason -> the granularity it implies (after the ENF paper: one disliked video must not
# suppress a whole topic unless the user said the topic was the problem).
REASON_GRANULARITY = {
    "topic": Granularity.CATEGORY,
    "creator": Granularity.CREATOR,
    "quality": Granularity.ITEM,
    "repetitive": Granularity.CATEGORY,
    "offensive": Granularity.ITEM,
    "unknown": Granularity.ITEM,
}
# Integer code of each granularity in tensors (the model's reason table, history-side NTR).
GRANULARITY_CODE = {Granularity.ITEM: 0, Granularity.CREATOR: 1, Granularity.CATEGORY: 2}
# Order fixes the reason ids; append only.
REASONS = tuple(REASON_GRANULARITY)

# The reason an explicit action implies when the log carries none.
ACTION_DEFAULT_REASON = {"not_interested": "topic", "hide_creator": "creator", "report": "offensive"}


@dataclasses.dataclass(frozen=True)
class LabelConfig:
    """How events become labels. The single place the skip rule's defaults are documented.

    A `view` is an implicit negative (`skip`) when `watch_ms < skip_ms`, or when the duration is
    known (> 0) and `watch_ms / duration_ms < skip_ratio`. A `view` that is not a skip is
    POSITIVE when the duration is known and `watch_ms / duration_ms >= positive_ratio`, or when
    the duration is unknown and `watch_ms >= positive_ms`; otherwise NEUTRAL. A `view` without
    `watch_ms` is NEUTRAL (e.g. a 3-star MovieLens rating).

    Attributes:
      skip_ms: watch time below which a view is a skip (3 s, the KuaiRand short-play cut).
      skip_ratio: watch share below which a view is a skip.
      positive_ratio: watch share from which a view counts as positive.
      positive_ms: watch time from which a view of unknown duration counts as positive.
    """

    skip_ms: int = 3000
    skip_ratio: float = 0.1
    positive_ratio: float = 0.5
    positive_ms: int = 10000

    def __post_init__(self):
        if self.skip_ms < 0 or self.positive_ms < 0:
            raise ValueError("skip_ms and positive_ms must be >= 0 (milliseconds).")
        if not 0.0 <= self.skip_ratio <= self.positive_ratio <= 1.0:
            raise ValueError(
                "Need 0 <= skip_ratio <= positive_ratio <= 1, got "
                f"skip_ratio={self.skip_ratio}, positive_ratio={self.positive_ratio}."
            )


def is_skip(watch_ms: int | None, duration_ms: int | None, config: LabelConfig) -> bool:
    """True when a play of `watch_ms` of a `duration_ms` item is a fast skip."""
    if watch_ms is None:
        return False
    if watch_ms < config.skip_ms:
        return True
    return bool(duration_ms) and watch_ms / duration_ms < config.skip_ratio


def label_event(
    action: str, watch_ms: int | None, duration_ms: int | None, config: LabelConfig
) -> tuple[Label, str]:
    """Labels one event.

    Args:
      action: a validated action from `ACTIONS`.
      watch_ms: watch time in ms, or None when unknown.
      duration_ms: item duration in ms, or None / 0 when unknown.
      config: the skip and positive thresholds.

    Returns:
      (label, effective action): a `view` judged a skip comes back as action `skip`.
    """
    if action in EXPLICIT_NEGATIVE_ACTIONS:
        return Label.EXPLICIT_NEGATIVE, action
    if action in IMPLICIT_NEGATIVE_ACTIONS:
        return Label.IMPLICIT_NEGATIVE, action
    if action != "view":
        return Label.POSITIVE, action
    if watch_ms is None:
        return Label.NEUTRAL, action
    if is_skip(watch_ms, duration_ms, config):
        return Label.IMPLICIT_NEGATIVE, "skip"
    if duration_ms:
        positive = watch_ms / duration_ms >= config.positive_ratio
    else:
        positive = watch_ms >= config.positive_ms
    return (Label.POSITIVE if positive else Label.NEUTRAL), action
