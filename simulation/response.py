"""The world's user model: how a user responds to one shown item (the "choice model").

`respond` turns (users, shown items, their recent history) into a watch time, one action from
the DESIGN vocabulary (the strongest of what the user did), the reason shown with an explicit
negative, and the hidden true reason of every negative. `simulate` (the logs) and the closed
loop (a recommender in place of the logging policy) share it, so both see the same users.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ntr.pipelines.events import is_skip, label_event
from ntr.simulation.catalogue import Catalogue

# Explicit feedback triggers in priority order; index = reason code below.
TRIGGERS = ("offensive", "creator", "topic", "quality", "repetitive")
_UNKNOWN = len(TRIGGERS)
TRUE_REASONS = TRIGGERS + ("unknown",)
# Action chosen for each trigger: (action when reported through a dedicated button, its share).
_DEDICATED = {
    "offensive": ("report", 0.3),
    "creator": ("hide_creator", 0.4),
    "topic": ("not_interested", 0.5),
}


@dataclasses.dataclass
class Users:
    """Hidden user state. Arrays are `[n_users, ...]`."""

    cat_affinity: np.ndarray  # [n_users, n_categories] taste per category
    hated_cat: np.ndarray  # [n_users, n_categories] bool, topic-dislike triggers
    fav_creators: np.ndarray  # [n_users, 4]
    hated_creators: np.ndarray  # [n_users, 3] creator-dislike triggers
    quality_sens: np.ndarray  # [n_users]
    offensive_sens: np.ndarray  # [n_users]
    repetition_tolerance: np.ndarray  # [n_users] same-category shows in the last 10 tolerated
    feedback: np.ndarray  # [n_users] propensity to press buttons at all
    like_prop: np.ndarray  # [n_users]
    patience: np.ndarray  # [n_users] utility offset of watching
    n_events: np.ndarray  # [n_users]


@dataclasses.dataclass
class Response:
    """What each of m users did with the item shown to them. Arrays are `[m]`.

    Attributes:
      watch: watch time, ms.
      action: action names.
      explicit: True for an explicit negative.
      trigger: index into TRUE_REASONS of the explicit negative's cause (unknown otherwise).
      given: True where the explicit negative's reason is filled in (the user said why).
      true_reason: index into TRUE_REASONS of any negative's hidden cause, len(TRUE_REASONS)
        (no reason) for positives and neutrals.
      label: Label names by the skip rule.
    """

    watch: np.ndarray
    action: np.ndarray
    explicit: np.ndarray
    trigger: np.ndarray
    given: np.ndarray
    true_reason: np.ndarray
    label: np.ndarray


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def respond(
    rng: np.random.Generator,
    config,
    users: Users,
    cat: Catalogue,
    active: np.ndarray,
    items: np.ndarray,
    seen: np.ndarray,
    recent_cats: np.ndarray,
) -> Response:
    """Responses of users `active` [m] to `items` [m].

    Args:
      rng: the world's generator (its draws are part of what fixes the logs).
      config: the WorldConfig (trigger_rate, reason_given_share, skip_rule).
      users / cat: the hidden users and the catalogue.
      active: [m] user indices; items: [m] item indices shown to them.
      seen: [m, S] recently shown items per user (-1 = none), for "already seen".
      recent_cats: [m, 10] primary categories of the last shows, for repetition.
    """
    m = len(active)
    cats = cat.categories[items]
    creator = cat.creator[items]
    # Taste: primary category fully, secondary half.
    aff = users.cat_affinity[active]
    cat_term = np.take_along_axis(aff, cats[:, :1], 1)[:, 0]
    cat_term += np.where(
        cats[:, 1] >= 0, 0.5 * np.take_along_axis(aff, np.maximum(cats[:, 1:], 0), 1)[:, 0], 0.0
    )
    fav = (users.fav_creators[active] == creator[:, None]).any(1)
    hated_creator = (users.hated_creators[active] == creator[:, None]).any(1)
    hated_topic = np.take_along_axis(users.hated_cat[active], cats[:, :1], 1)[:, 0]
    if config.aversion_persistence < 1.0:
        # The aversion is felt on only part of the exposures; an unfelt hated topic is neutral.
        unfelt = rng.random(m) >= config.aversion_persistence
        cat_term = np.where(hated_topic & unfelt, 0.0, cat_term)
        hated_creator &= ~unfelt
        hated_topic &= ~unfelt
    repeats = (recent_cats == cats[:, :1]).sum(1)
    excess = np.maximum(0, repeats - users.repetition_tolerance[active])
    already = (seen == items[:, None]).any(1)
    offensive = cat.offensive[items] & (rng.random(m) < users.offensive_sens[active])
    parts = np.stack(  # negative utility components, in TRIGGERS order
        [
            -2.0 * offensive,
            -3.0 * hated_creator,
            np.minimum(cat_term, 0.0),
            0.5 * np.minimum(cat.quality[items], 0.0) * users.quality_sens[active],
            -0.6 * excess - 1.0 * already,
        ],
        axis=1,
    )
    utility = (
        np.maximum(cat_term, 0.0)
        + 1.2 * fav
        + 0.3 * cat.quality[items]
        + parts.sum(1)
        + rng.normal(0.0, 0.6, m)
    )
    ratio = _sigmoid(2.0 * (utility - users.patience[active]) + 0.8)
    ratio *= 1.0 + (utility > 1.2) * rng.random(m) * 0.8  # loved items get replayed
    duration = cat.duration_ms[items]
    watch = (ratio * duration).astype(np.int64)

    # Explicit feedback: each trigger fires with its probability; the first one wins.
    press = config.trigger_rate * users.feedback[active]
    fired = np.stack(
        [
            offensive & (rng.random(m) < 0.35 * press),
            hated_creator & (rng.random(m) < 0.12 * press),
            hated_topic & (rng.random(m) < 0.08 * press),
            cat.clickbait[items] & (rng.random(m) < 0.10 * users.quality_sens[active] * press),
            (excess > 0) & (rng.random(m) < 0.003 * excess * press),
        ],
        axis=1,
    )
    explicit = fired.any(1)
    trigger = np.where(explicit, fired.argmax(1), _UNKNOWN)
    watch = np.where(explicit, (duration * rng.uniform(0.02, 0.3, m)).astype(np.int64), watch)

    skip = np.array([is_skip(int(w), int(d), config.skip_rule) for w, d in zip(watch, duration, strict=True)])
    worst = parts.argmin(1)
    skip_cause = np.where(parts[np.arange(m), worst] < -0.5, worst, _UNKNOWN)

    like = rng.random(m) < users.like_prop[active] * _sigmoid(2.0 * utility - 1.0)
    share = rng.random(m) < 0.02 * _sigmoid(utility)
    follow = rng.random(m) < np.where(fav, 0.03, 0.002)
    action = np.where(
        follow,
        "follow",
        np.where(share, "share", np.where(like, "like", np.where(ratio >= 0.9, "complete", "view"))),
    ).astype(object)
    action[skip & ~explicit] = "view"
    for t, name in enumerate(TRIGGERS):
        chosen = explicit & (trigger == t)
        dedicated, share_of = _DEDICATED.get(name, ("dislike", 0.0))
        action[chosen] = np.where(rng.random(chosen.sum()) < share_of, dedicated, "dislike")
    given = explicit & (rng.random(m) < config.reason_given_share)
    # The pipeline's own labelling, so reported rates are the ones preprocessing will see.
    label = np.array(
        [
            label_event(a, int(w), int(d), config.skip_rule)[0].name
            for a, w, d in zip(action, watch, duration, strict=True)
        ],
        dtype=object,
    )
    true_reason = np.where(explicit, trigger, np.where(skip, skip_cause, len(TRUE_REASONS)))

    return Response(watch, action, explicit, trigger, given, true_reason, label)
