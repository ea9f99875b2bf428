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

from ntr.pipelines.events import Label, LabelConfig, label_event

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
