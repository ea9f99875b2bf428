"""What a log teaches about dislikes: do later exposures to a disliked group fail?

For every explicit negative of a user (time order), two measures on that user's later events:

- the *next-N mix*: the share of the next `window` exposures that share the disliked item's
  creator, and that share its primary category (how much a feed re-shows after a dislike);
- the *lesson*: every later exposure of the same user to the disliked group (creator, or any
  category), with its label mix, against the label mix of all other exposures. A log teaches
  "after a dislike, that group fails" when the first mix is much more negative than the second.

Works on canonical events and items (`user_id`, `item_id`, `timestamp`, `action`, `watch_ms`,
`duration_ms`; `creator_id`, `categories`), whatever produced them: the world or a reader.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from ntr.pipelines.events import (
    ACTION_DEFAULT_REASON,
    REASON_GRANULARITY,
    Granularity,
    Label,
    LabelConfig,
    label_event,
)

LABELS = ("POSITIVE", "NEUTRAL", "IMPLICIT_NEGATIVE", "EXPLICIT_NEGATIVE")


def lesson_in_log(events, items, window: int = 10, rule: LabelConfig | None = None) -> dict:
    """The lesson a log carries about dislikes (see the module doc).

    Args:
      events: canonical event dicts (any order; sorted per user by time here).
      items: canonical item dicts; events on unknown items are ignored.
      window: N of the next-N mix.
      rule: the skip rule for labels (the pipeline's default when None).

    Returns:
      {"events", "dislikes", "next_same_creator", "next_same_category" (shares of the next
      `window` exposures), "later": {"creator"|"category": {"exposures", "per_dislike",
      "labels": {label: share}}}, "others": {"exposures", "labels"}}. Shares are None where
      nothing was counted; creator measures only count items with a creator.
    """
    rule = rule or LabelConfig()
    creator = {i["item_id"]: i.get("creator_id") or "" for i in items}
    cats = {i["item_id"]: list(i.get("categories") or []) for i in items}
    per_user = defaultdict(list)
    for e in events:
        if e["item_id"] in creator:
            per_user[e["user_id"]].append(e)
    dislikes = next_creator = next_category = next_total = 0
    later = {"creator": Counter(), "category": Counter()}
    others = Counter()
    for history in per_user.values():
        history.sort(key=lambda e: e["timestamp"])
        labels = [label_event(e["action"], e.get("watch_ms"), e.get("duration_ms"), rule)[0] for e in history]
        disliked_creators, disliked_cats = set(), set()
        for e, label in zip(history, labels, strict=True):
            c, ks = creator[e["item_id"]], cats[e["item_id"]]
            in_creator = bool(c) and c in disliked_creators
            in_category = any(k in disliked_cats for k in ks)
            if in_creator:
                later["creator"][label.name] += 1
            if in_category:
                later["category"][label.name] += 1
            if not in_creator and not in_category:
                others[label.name] += 1
            if label == Label.EXPLICIT_NEGATIVE:
                if c:
                    disliked_creators.add(c)
                disliked_cats.update(ks)
        for k, (e, label) in enumerate(zip(history, labels, strict=True)):
            if label != Label.EXPLICIT_NEGATIVE:
                continue
            dislikes += 1
            c, primary = creator[e["item_id"]], cats[e["item_id"]][:1]
            for nxt in history[k + 1 : k + 1 + window]:
                next_total += 1
                next_creator += bool(c) and creator[nxt["item_id"]] == c
                next_category += bool(primary) and primary[0] in cats[nxt["item_id"]][:1]

    def mix(counter):
        total = sum(counter.values())
        return {"exposures": total, "labels": {k: counter[k] / total if total else None for k in LABELS}}

    return {
        "events": sum(len(h) for h in per_user.values()),
        "dislikes": dislikes,
        "next_same_creator": next_creator / next_total if next_total else None,
        "next_same_category": next_category / next_total if next_total else None,
        "later": {
            g: dict(mix(later[g]), per_dislike=sum(later[g].values()) / dislikes if dislikes else None)
            for g in later
        },
        "others": mix(others),
    }


GROUP_KINDS = ("item", "creator", "category")


def lesson_ratios(
    histories: list[list[dict]],
    items: list[dict],
    rng: np.random.Generator,
    resamples: int = 1000,
    rule: LabelConfig | None = None,
    granularity: Granularity | None = None,
) -> dict:
    """Per group kind, how much less later exposures to a disliked group engage: the positive
    rate of a user's exposures to an item, creator or category they disliked earlier, divided by
    the positive rate of the same users' other exposures, minus 1 (-0.4: 40% less engagement).

    Args:
      histories: per user (or window), canonical events oldest first.
      items: canonical item dicts; events on other items are ignored.
      rng: draws the bootstrap over histories.
      resamples: bootstrap resamples for the SE and 95% interval.
      rule: the skip rule for labels (the pipeline's default when None).
      granularity: count only dislikes whose reason has this granularity (no reason: item;
        `hide_creator` / `not_interested` / `report` without one: the reason they imply);
        None: every dislike.

    Returns:
      {kind: {"value", "se", "ci95", "exposures", "positive_rate"}, "others": {"exposures",
      "positive_rate"}, "dislikes": int}; value None where no later exposure to such a group
      exists. Only histories with at least one counted dislike count, and the dislike events
      themselves are in no group.
    """
    rule = rule or LabelConfig()
    creator = {i["item_id"]: i.get("creator_id") or "" for i in items}
    cats = {i["item_id"]: list(i.get("categories") or []) for i in items}
    kinds = (*GROUP_KINDS, "others")
    # [histories, kinds] exposures and positives
    exposures, positives = [], []
    dislikes = 0
    for history in histories:
        events = [e for e in history if e["item_id"] in creator]
        labels = [label_event(e["action"], e.get("watch_ms"), e.get("duration_ms"), rule)[0] for e in events]
        counted = [
            label == Label.EXPLICIT_NEGATIVE and (granularity is None or _granularity(e) == granularity)
            for e, label in zip(events, labels, strict=True)
        ]
        if not any(counted):
            continue
        dislikes += sum(counted)
        n, pos = np.zeros(len(kinds)), np.zeros(len(kinds))
        seen = {"item": set(), "creator": set(), "category": set()}
        for e, label, dislike in zip(events, labels, counted, strict=True):
            item, c, ks = e["item_id"], creator[e["item_id"]], cats[e["item_id"]]
            if label == Label.EXPLICIT_NEGATIVE:
                if not dislike:
                    continue  # a dislike of another granularity: in no group, not an exposure
                seen["item"].add(item)
                if c:
                    seen["creator"].add(c)
                seen["category"].update(ks)
                continue
            inside = (
                item in seen["item"],
                bool(c) and c in seen["creator"],
                any(k in seen["category"] for k in ks),
            )
            hit = np.array([*inside, not any(inside)], float)
            n += hit
            pos += hit * (label == Label.POSITIVE)
        exposures.append(n)
        positives.append(pos)
    n = np.array(exposures).reshape(-1, len(kinds))
    pos = np.array(positives).reshape(-1, len(kinds))

    def ratios(rows: np.ndarray) -> np.ndarray:  # [len(kinds) - 1] rate ratio - 1 (nan: none)
        total, hits = n[rows].sum(0), pos[rows].sum(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = hits / total
            return rate[:-1] / rate[-1] - 1.0

    value = ratios(np.arange(len(n)))
    draws = np.array([ratios(rng.integers(0, len(n), len(n))) for _ in range(resamples)]) if len(n) else None
    out = {}
    for j, kind in enumerate(GROUP_KINDS):
        total = float(n[:, j].sum()) if len(n) else 0.0
        rate = float(pos[:, j].sum() / total) if total else None
        if not total or not np.isfinite(value[j]):
            out[kind] = {
                "value": None,
                "se": None,
                "ci95": None,
                "exposures": int(total),
                "positive_rate": rate,
            }
            continue
        finite = draws[:, j][np.isfinite(draws[:, j])]
        out[kind] = {
            "value": float(value[j]),
            "se": float(finite.std(ddof=1)) if len(finite) > 1 else None,
            "ci95": [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))]
            if len(finite)
            else None,
            "exposures": int(total),
            "positive_rate": rate,
        }
    others = float(n[:, -1].sum()) if len(n) else 0.0
    out["others"] = {
        "exposures": int(others),
        "positive_rate": float(pos[:, -1].sum() / others) if others else None,
    }
    out["dislikes"] = dislikes
    return out


def _granularity(event: dict) -> Granularity:
    """The granularity a dislike's reason implies (its action's default reason when it has none)."""
    reason = event.get("reason") or ACTION_DEFAULT_REASON.get(event["action"])
    return REASON_GRANULARITY.get(reason, Granularity.ITEM) if reason else Granularity.ITEM
