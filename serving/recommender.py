"""History -> top-K recommendations that respect what the user disliked.

history (events with actions and reasons) -> query embedding (ExportedModel) -> K' candidates
(TopK index) -> filters -> top K. Filters remove consumed items, disliked items and, for
dislikes whose reason has creator or category granularity (DESIGN.md), the whole disliked
creator or category. Every removed candidate is reported with why, for debugging.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ntr.pipelines.events import (
    ACTION_DEFAULT_REASON,
    EXPLICIT_NEGATIVE_ACTIONS,
    REASON_GRANULARITY,
    Granularity,
)
from ntr.reasons.threshold import NEVER
from ntr.retrieval.exported import ExportedModel
from ntr.serving.store import PREDICTED
from ntr.serving.topk import TopK


@dataclasses.dataclass(frozen=True)
class RecommenderConfig:
    """Attributes:
    candidate_factor: K' = max(candidate_factor * K, K + min_extra) candidates are asked for
      first; when filters leave fewer than K, K' grows 4x until the catalogue is exhausted.
    min_extra: see candidate_factor.
    exclude_consumed: drop every item already in the history, not only the disliked ones.
    suppress_creator: a dislike with a creator-granularity reason (and `hide_creator`) drops
      all of that creator's items.
    suppress_category: a dislike with a category-granularity reason drops the disliked
      item's categories.
    predicted_threshold: a reason the reason model predicted (`reason_source="predicted"`)
      counts only when its confidence is at least this; below it the event reaches the model
      and the filters without a reason, so only the item goes. The default never trusts a
      prediction; `ntr serve --reasons` sets the threshold chosen on validation users.
    """

    candidate_factor: int = 4
    min_extra: int = 50
    exclude_consumed: bool = True
    suppress_creator: bool = True
    suppress_category: bool = True
    predicted_threshold: float = NEVER


@dataclasses.dataclass(frozen=True)
class Filters:
    """Per-request exclusions on top of what the history implies."""

    exclude_items: frozenset[str] = frozenset()
    exclude_creators: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()


@dataclasses.dataclass
class Recommendation:
    """Attributes:
    items: top K, best first: item_id, score, creator_id, categories.
    filtered: candidates removed on the way, in score order: item_id, score, why.
    ignored_items: history item ids the model does not know (skipped, not fatal).
    cold_start: True when the history gave the model nothing to attend to, so items are
      ranked by training popularity instead.
    """

    items: list[dict]
    filtered: list[dict]
    ignored_items: list[str]
    cold_start: bool


@dataclasses.dataclass
class _Exclusions:
    items: dict[str, str]  # item id -> why
    creators: dict[str, str]
    categories: dict[str, str]
    details: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)  # (kind, id) -> detail


def trusted(event: dict, threshold: float) -> dict:
    """The event as the Recommender acts on it: a predicted reason under `threshold` is dropped."""
    if event.get("reason_source") == PREDICTED and (event.get("reason_confidence") or 0.0) < threshold:
        return {**event, "reason": None}
    return event


def dislike_granularity(event: dict) -> Granularity | None:
    """What an event says to suppress: None for non-negatives, else item/creator/category."""
    action = event["action"]
    if action not in EXPLICIT_NEGATIVE_ACTIONS:
        return None
    if action == "hide_creator":
        return Granularity.CREATOR
    reason = event.get("reason") or ACTION_DEFAULT_REASON.get(action, "unknown")
    return REASON_GRANULARITY.get(reason, Granularity.ITEM)


class Recommender:
    """Recommends from an exported model and any `TopK` index over its item embeddings."""

    def __init__(self, model: ExportedModel, index: TopK, config: RecommenderConfig | None = None):
        if index.num_items != len(model.item_ids) or index.dim != model.export["dim"]:
            raise ValueError(
                f"the index has {index.num_items} items of dim {index.dim} but the model has "
                f"{len(model.item_ids)} of dim {model.export['dim']}; build the index from this model."
            )
        self.model = model
        self.index = index
        self.config = config or RecommenderConfig()
        # Cold-start order: most positive training targets first, ties by catalogue order.
        counts = np.array([item.get("positives", 0) for item in model.items], np.int64)
        self._popular = np.lexsort((np.arange(len(counts)), -counts))

    def _exclusions(self, history: list[dict], filters: Filters) -> _Exclusions:
        out = _Exclusions(
            items={i: "request_filter" for i in filters.exclude_items},
            creators={c: "request_filter" for c in filters.exclude_creators},
            categories={c: "request_filter" for c in filters.exclude_categories},
        )
        items = self.model.items
        for event in history:
            row = self.model.item_index.get(event["item_id"])
            granularity = dislike_granularity(event)
            predicted = event.get("reason_source") == PREDICTED and event.get("reason")
            if predicted and granularity is None:
                # A skip whose reason was predicted with enough confidence acts like a dislike.
                granularity = REASON_GRANULARITY.get(event["reason"], Granularity.ITEM)
            if granularity is not None:
                out.items.setdefault(event["item_id"], "disliked")
                if row is None:
                    continue
                suffix, detail = ("_predicted", self._detail(event)) if predicted else ("", None)
                if granularity is Granularity.CREATOR and self.config.suppress_creator:
                    creator = items[row].get("creator_id")
                    if creator and creator not in out.creators:
                        out.creators[creator] = "creator_disliked" + suffix
                        if predicted:
                            out.details["creator", creator] = detail
                elif granularity is Granularity.CATEGORY and self.config.suppress_category:
                    for category in items[row].get("categories", []):
                        if category not in out.categories:
                            out.categories[category] = "category_disliked" + suffix
                            if predicted:
                                out.details["category", category] = detail
            elif self.config.exclude_consumed:
                out.items.setdefault(event["item_id"], "consumed")
        return out

    def _detail(self, event: dict) -> str:
        """Why a predicted reason removed a group (for debug output)."""
        confidence = event.get("reason_confidence") or 0.0
        return (
            f"reason {event['reason']!r} predicted with p={confidence:.2f} (threshold "
            f"{self.config.predicted_threshold:.2f}) for {event['action']} of {event['item_id']}"
        )

    def _why(self, row: int, exclusions: _Exclusions) -> tuple[str, str | None] | None:
        """(why, detail) when the item is excluded, else None."""
        item = self.model.items[row]
        if item["item_id"] in exclusions.items:
            return exclusions.items[item["item_id"]], None
        creator = item.get("creator_id", "")
        if creator in exclusions.creators:
            return exclusions.creators[creator], exclusions.details.get(("creator", creator))
        for category in item.get("categories", []):
            if category in exclusions.categories:
                return exclusions.categories[category], exclusions.details.get(("category", category))
        return None

    def recommend(self, history: list[dict], k: int = 10, filters: Filters | None = None) -> Recommendation:
        """Top k for one user.

        Args:
          history: canonical events, oldest first (item_id, action, timestamp, watch_ms,
            duration_ms, reason); unknown item ids are ignored and reported.
          k: how many items to return (fewer only when filters leave fewer in the catalogue).
          filters: extra exclusions for this request.

        Returns:
          A `Recommendation`.
        """
        return self.recommend_batch([history], k, [filters])[0]

    def recommend_batch(
        self, histories: list[list[dict]], k: int = 10, filters: list[Filters | None] | None = None
    ) -> list[Recommendation]:
        """`recommend` for many users with one model call and one index call."""
        num_items = len(self.model.item_ids)
        if not 1 <= k <= num_items:
            raise ValueError(f"k must be in [1, {num_items}] (the catalogue size), got {k}.")
        filters = filters or [None] * len(histories)
        threshold = self.config.predicted_threshold
        known = [self.model.known([trusted(e, threshold) for e in history]) for history in histories]
        queries = self.model.encode([events for events, _ in known])
        cold = ~np.any(queries != 0, axis=1)
        exclusions = [
            self._exclusions(events, f or Filters()) for (events, _), f in zip(known, filters, strict=True)
        ]
        results = [None] * len(histories)
        width = min(num_items, max(self.config.candidate_factor * k, k + self.config.min_extra))
        pending = [i for i in range(len(histories)) if not cold[i]]
        for i in np.flatnonzero(cold):
            results[i] = self._select(self._popular, None, exclusions[i], k, known[i][1], True)
        while pending:
            scores, rows = self.index.search(queries[pending], width)
            retry = []
            for j, i in enumerate(pending):
                result = self._select(rows[j], scores[j], exclusions[i], k, known[i][1], False)
                if len(result.items) < k and width < num_items:
                    retry.append(i)
                else:
                    results[i] = result
            pending, width = retry, min(num_items, width * 4)
        return results

    def _select(
        self,
        rows: np.ndarray,
        scores: np.ndarray | None,
        exclusions: _Exclusions,
        k: int,
        ignored: list[str],
        cold_start: bool,
    ) -> Recommendation:
        items, filtered = [], []
        for position, row in enumerate(rows):
            row = int(row)
            item = self.model.items[row]
            score = float(scores[position]) if scores is not None else 0.0
            excluded = self._why(row, exclusions)
            if excluded:
                why, detail = excluded
                entry = {"item_id": item["item_id"], "score": score, "why": why}
                filtered.append(entry if detail is None else {**entry, "detail": detail})
                continue
            items.append(
                {
                    "item_id": item["item_id"],
                    "score": score,
                    "creator_id": item.get("creator_id", ""),
                    "categories": list(item.get("categories", [])),
                }
            )
            if len(items) == k:
                break
        return Recommendation(items, filtered, ignored, cold_start)
