"""What reasons the recommender gets to see: the four arms of the online-reasons closed loop.

Real users state a reason for few of their dislikes. A `ReasonArm` wraps any `Ranker` and
rewrites each history before ranking, the way the service would have stored it:

    item_only   no reasons at all: every dislike removes only its item
    stated      the reasons users stated (the world's `reason_given_share` of dislikes)
    predicted   stated, plus the reason model's prediction for every dislike without one
                (and skips with `label_skips`), made once when the event happens, with the
                service's `reason_source` / `reason_confidence` (the Recommender trusts it
                above its threshold)
    oracle      every explicit negative carries its true (hidden) reason

Events carry the world's hidden `true_reason`; no ranker reads it. The predicted arm also
counts what the predictions did against the truth, including the collateral: a group removed
by a wrong prediction that the user actually likes.
"""

from __future__ import annotations

import numpy as np

from ntr.pipelines.events import EXPLICIT_NEGATIVE_ACTIONS, REASON_GRANULARITY, Granularity
from ntr.serving.store import PREDICTED, STATED

ARMS = ("item_only", "stated", "predicted", "oracle")


def _granularity(reason: str | None) -> str:
    return REASON_GRANULARITY.get(reason or "unknown", Granularity.ITEM).value


class ReasonArm:
    """A `Ranker` whose histories carry the reasons of one arm.

    Args:
      ranker: the recommender under test (e.g. `RecommenderRanker`).
      arm: one of ARMS.
      reasons: an `OnlineReasons` (the predicted arm only).
      threshold: the confidence a prediction needs to remove a group (the Recommender's
        `predicted_threshold`; used here only to count what acted).
      liked: optional callable(key, event) -> (creator liked?, category liked?) for the
        collateral; `key` is the user's position in the batch (the loop keeps users in order;
        with key_by="seed" it is the seed, so leave `liked` out there).
      key_by: what names a history across calls, for remembering predictions: "position" in
        the batch (the closed loop) or its ranker "seed" (the counterfactual gives both branches
        of a pair the pair's seed, so a prefix is predicted once for all its branches).
    """

    def __init__(
        self, ranker, arm: str, reasons=None, threshold: float = 1.01, liked=None, key_by="position"
    ):
        if arm not in ARMS:
            raise ValueError(f"arm must be one of {ARMS}, got {arm!r}.")
        if arm == "predicted" and reasons is None:
            raise ValueError("the predicted arm needs a reason model (OnlineReasons).")
        if key_by not in ("position", "seed"):
            raise ValueError(f"key_by must be position or seed, got {key_by!r}.")
        self.key_by = key_by
        self.ranker, self.arm, self.reasons = ranker, arm, reasons
        self.model = ranker.model
        self.threshold, self.liked = threshold, liked
        self._memo: dict[tuple, dict] = {}  # (history key, position) -> the predicted fields
        names = (
            "predicted",
            "acted",
            "acted_right",
            "acted_wrong",
            "wrong_liked_creator",
            "wrong_liked_category",
        )
        self.counts = dict.fromkeys(names, 0)

    def _stated(self, event: dict) -> dict:
        kept = {k: v for k, v in event.items() if k != "true_reason"}
        if self.arm == "item_only":
            kept["reason"] = None
        elif self.arm == "oracle" and event.get("action") in EXPLICIT_NEGATIVE_ACTIONS:
            kept["reason"] = event.get("true_reason") or kept.get("reason")
        if kept.get("reason"):
            kept["reason_source"] = STATED
        return kept

    def prepare(self, history: list[dict], key) -> list[dict]:
        """The history as this arm's service would have stored it (`key` names the user)."""
        out = [self._stated(e) for e in history]
        if self.arm != "predicted":
            return out
        todo = []
        for position, event in enumerate(out):
            memo = self._memo.get((key, event["timestamp"], event["item_id"]))
            if memo is not None:
                event.update(memo)
            elif self.reasons.wants(event):
                todo.append(position)
        for position in todo:
            # Predicted when the event happened: from the history before it, as the service does.
            event = out[position]
            self.reasons.fill(out[:position], [event])
            if event.get("reason_source") != PREDICTED:
                continue
            fields = {k: event[k] for k in ("reason", "reason_source", "reason_confidence")}
            self._memo[key, event["timestamp"], event["item_id"]] = fields
            self._count(key, history[position], fields)
        return out

    def _count(self, key, original: dict, fields: dict) -> None:
        self.counts["predicted"] += 1
        granularity = _granularity(fields["reason"])
        if granularity == "item" or fields["reason_confidence"] < self.threshold:
            return
        self.counts["acted"] += 1
        if granularity == _granularity(original.get("true_reason")):
            self.counts["acted_right"] += 1
            return
        self.counts["acted_wrong"] += 1
        if self.liked is not None:
            creator_liked, category_liked = self.liked(key, original)
            if granularity == "creator" and creator_liked:
                self.counts["wrong_liked_creator"] += 1
            if granularity == "category" and category_liked:
                self.counts["wrong_liked_category"] += 1

    def rank(self, histories: list[list[dict]], k: int, seeds: np.ndarray) -> np.ndarray:
        keys = list(range(len(histories))) if self.key_by == "position" else [int(seed) for seed in seeds]
        prepared = [self.prepare(h, key) for h, key in zip(histories, keys, strict=True)]
        return self.ranker.rank(prepared, k, seeds)
