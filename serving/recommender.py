"""History -> top-K recommendations that respect what the user disliked.

history (events with actions and reasons) -> query embedding (ExportedModel) -> K' candidates
(TopK index) -> filters -> top K. Filters remove consumed items, disliked items and, for
dislikes whose reason has creator or category granularity (DESIGN.md), the whole disliked
creator or category. Every removed candidate is reported with why, for debugging.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

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
      first; when filters leave fewer than K, K' grows RETRY_GROWTH x, capped at (items the
      filters exclude) + K, which always holds K allowed items.
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


class Recommendation:
    """Attributes:
    items: top K, best first: item_id, score, creator_id, categories.
    filtered: candidates removed on the way, in score order: item_id, score, why (built when
      first read: after a category dislike at 10^6 items it can run to tens of thousands).
    ignored_items: history item ids the model does not know (skipped, not fatal).
    cold_start: True when the history gave the model nothing to attend to, so items are
      ranked by training popularity instead.
    """

    def __init__(
        self,
        items: list[dict],
        filtered: list[dict] | Callable[[], list[dict]],
        ignored_items: list[str],
        cold_start: bool,
    ):
        self.items = items
        self._filtered = filtered
        self.ignored_items = ignored_items
        self.cold_start = cold_start

    @property
    def filtered(self) -> list[dict]:
        if callable(self._filtered):
            self._filtered = self._filtered()
        return self._filtered


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


# A request whose candidates leave fewer than k after its filters searches again this many times
# wider, at most at the width that must be enough (excluded items + k). Wide steps: at 10^6
# items a category dislike can push the 10th allowed item thousands of rows down, and each
# step costs an index search.
RETRY_GROWTH = 16
# Past this share of the catalogue, every item is scored instead (`Recommender._exact`): a cost
# that does not grow with what the filters exclude. Measured at 10^6 items, in process: ~25 ms a
# request (the [10^6, 64] product alone 11-17 ms), against a tree search of 10^5 / 2.3 x 10^5
# rows at 10.6 / 24.7 ms (50 leaves; `ScaNN.search` probes more for such widths, not timed).
# So it bounds the worst case; it is not the measured crossover.
EXACT_SHARE = 0.1


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
        # Rows of each creator and category: a request's exclusions become a row mask in NumPy,
        # not a Python test per candidate (a category dislike at 10^6 items can push the first
        # allowed candidate tens of thousands of rows down).
        self._creator_rows = _rows_by_key([[item.get("creator_id") or ""] for item in model.items])
        self._category_rows = _rows_by_key([item.get("categories", []) for item in model.items])

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
            excluded = self._excluded(exclusions[i])
            results[i] = self._select(self._popular, None, exclusions[i], excluded, k, known[i][1], True)
        masks: dict[int, np.ndarray] = {}  # kept only for requests that search again
        while pending:
            scores, rows = self.index.search(queries[pending], width)
            retry, enough = [], 0
            for j, i in enumerate(pending):
                excluded = masks.pop(i, None)
                if excluded is None:
                    excluded = self._excluded(exclusions[i])
                result = self._select(rows[j], scores[j], exclusions[i], excluded, k, known[i][1], False)
                if len(result.items) < k and width < num_items:
                    retry.append(i)
                    masks[i] = excluded
                    # width >= excluded + k leaves at least k allowed among distinct candidates.
                    enough = max(enough, int(excluded.sum()) + k)
                else:
                    results[i] = result
            # RETRY_GROWTH times wider each time, never past the width that is surely enough.
            pending, width = retry, min(num_items, max(width + 1, min(width * RETRY_GROWTH, enough)))
            if pending and width > num_items * EXACT_SHARE:
                for i in pending:
                    results[i] = self._exact(queries[i], exclusions[i], masks[i], k, known[i][1])
                pending = []
        return results

    def _excluded(self, exclusions: _Exclusions) -> np.ndarray:
        """[num_items] bool: the rows the request's exclusions remove."""
        mask = np.zeros(len(self.model.item_ids), bool)
        index = self.model.item_index
        mask[[index[i] for i in exclusions.items if i in index]] = True
        for creator in exclusions.creators:
            mask[self._creator_rows.get(creator, [])] = True
        for category in exclusions.categories:
            mask[self._category_rows.get(category, [])] = True
        return mask

    def _select(
        self,
        rows: np.ndarray,
        scores: np.ndarray | None,
        exclusions: _Exclusions,
        excluded: np.ndarray,
        k: int,
        ignored: list[str],
        cold_start: bool,
    ) -> Recommendation:
        """The first k allowed candidates of `rows` [width] (score order; `excluded`
        [num_items] bool from `_excluded`) and the removed ones before the last of them."""
        rows = np.asarray(rows, np.int64)
        scores = np.zeros(len(rows), np.float32) if scores is None else scores
        removed = excluded[rows]
        kept = np.flatnonzero(~removed)[:k]
        # Candidates after the k-th kept one were never looked at, so they are not "filtered".
        end = int(kept[-1]) + 1 if len(kept) == k else len(rows)
        dropped = np.flatnonzero(removed[:end])
        return Recommendation(
            self._items(rows[kept], scores[kept]),
            lambda: self._filtered(rows[dropped], scores[dropped], exclusions),
            ignored,
            cold_start,
        )

    def _exact(
        self, query: np.ndarray, exclusions: _Exclusions, excluded: np.ndarray, k: int, ignored: list[str]
    ) -> Recommendation:
        """Scores every item for one query [dim] and keeps the best k allowed ones (`excluded`
        [num_items] bool from `_excluded`): one pass over the catalogue however much the filters
        remove, a bounded cost where the index search would keep widening."""
        scores = self.model.embeddings @ query  # [num_items]
        allowed = np.where(excluded, -np.inf, scores)
        k = min(k, int(len(excluded) - excluded.sum()))
        top = np.argpartition(-allowed, k - 1)[:k] if k else np.zeros(0, np.int64)
        top = top[np.lexsort((top, -scores[top]))]  # ties by the smaller row, as BruteForce
        kth = scores[top[-1]] if k else -np.inf
        above = np.flatnonzero(excluded & (scores >= kth))

        def filtered() -> list[dict]:
            rows = above[np.lexsort((above, -scores[above]))]
            return self._filtered(rows, scores[rows], exclusions)

        return Recommendation(self._items(top, scores[top]), filtered, ignored, False)

    def _items(self, rows: np.ndarray, scores: np.ndarray) -> list[dict]:
        out = []
        for row, score in zip(rows, scores, strict=True):
            item = self.model.items[row]
            out.append(
                {
                    "item_id": item["item_id"],
                    "score": float(score),
                    "creator_id": item.get("creator_id", ""),
                    "categories": list(item.get("categories", [])),
                }
            )
        return out

    def _filtered(self, rows: np.ndarray, scores: np.ndarray, exclusions: _Exclusions) -> list[dict]:
        out = []
        for row, score in zip(rows, scores, strict=True):
            why, detail = self._why(int(row), exclusions)
            entry = {"item_id": self.model.items[row]["item_id"], "score": float(score), "why": why}
            out.append(entry if detail is None else {**entry, "detail": detail})
        return out


def _rows_by_key(keys_per_row: list[list[str]]) -> dict[str, np.ndarray]:
    """{key: the rows listing it}, from each row's keys (empty keys skipped)."""
    pairs = [(key, row) for row, keys in enumerate(keys_per_row) for key in keys if key]
    if not pairs:
        return {}
    keys = np.array([key for key, _ in pairs], dtype=object)
    rows = np.array([row for _, row in pairs], np.int64)
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return {str(keys[a]): rows[a:b] for a, b in zip(starts, np.r_[starts[1:], len(keys)], strict=True)}
