"""What the simulator asks for recommendations: any `Ranker` (histories -> top-K item rows).

`ModelRanker` ranks with an exported model alone (query tower + a TopK index, no filters), so
it measures what the *model* learned from negatives. `RecommenderRanker` wraps the serving
`Recommender` (ScaNN index, dislike filters), so it measures what users of the service see.
Both use the model's item order (row i = line i of item_ids.txt).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ntr.retrieval.exported import ExportedModel
from ntr.serving.recommender import Recommender, RecommenderConfig
from ntr.serving.topk import BruteForce, TopK


class Ranker(Protocol):
    """Top-K item rows for a batch of histories.

    `seeds` [batch] are per-query random seeds: the simulator gives both branches of a
    counterfactual pair the same seed, so a stochastic ranker draws the same way in both.
    """

    model: ExportedModel

    def rank(self, histories: list[list[dict]], k: int, seeds: np.ndarray) -> np.ndarray:
        """Returns [batch, k] int64 item rows, best first."""


class ModelRanker:
    """The model's own ranking: query embedding -> index top K; nothing filtered.

    With `exclude_consumed`, items already in the history are skipped (a feed does not show
    them again) but disliked items get no special treatment: suppression must come from the
    model.
    """

    def __init__(self, model: ExportedModel, index: TopK | None = None, exclude_consumed: bool = False):
        self.model = model
        self.index = index or BruteForce(model.embeddings)
        self.exclude_consumed = exclude_consumed

    def rank(self, histories: list[list[dict]], k: int, seeds: np.ndarray) -> np.ndarray:
        known = [self.model.known(h)[0] for h in histories]
        queries = self.model.encode(known)
        extra = max((len(h) for h in known), default=0) if self.exclude_consumed else 0
        width = min(len(self.model.item_ids), k + extra)
        rows = self.index.search(queries, width)[1]
        if not self.exclude_consumed:
            return rows[:, :k]
        out = np.empty((len(histories), k), np.int64)
        for i, history in enumerate(known):
            consumed = {self.model.item_index[e["item_id"]] for e in history}
            kept = [r for r in rows[i] if r not in consumed][:k]
            if len(kept) < k:
                raise ValueError(
                    f"catalogue too small for k={k} after removing {len(consumed)} consumed items."
                )
            out[i] = kept
        return out


class RecommenderRanker:
    """The serving `Recommender` (its index and dislike filters) as a Ranker."""

    def __init__(self, recommender: Recommender):
        self.recommender = recommender
        self.model = recommender.model
        self.topped_up = 0

    @classmethod
    def with_filters(
        cls, model: ExportedModel, index: TopK | None = None, config: RecommenderConfig | None = None
    ):
        return cls(Recommender(model, index or BruteForce(model.embeddings), config))

    def rank(self, histories: list[list[dict]], k: int, seeds: np.ndarray) -> np.ndarray:
        """[len(histories), k] item rows. The service returns fewer than k items when the
        filters leave fewer in the catalogue (a small world, a user who disliked most of it);
        a simulated feed still shows k, so such a slate is topped up with the items the filters
        removed, best first, unconsumed ones before consumed ones. `topped_up` counts those
        slots."""
        results = self.recommender.recommend_batch(histories, k)
        index = self.model.item_index
        out = np.empty((len(results), k), np.int64)
        for i, result in enumerate(results):
            rows = [index[item["item_id"]] for item in result.items]
            if len(rows) < k:
                removed = sorted(result.filtered, key=lambda f: f["why"] in ("consumed", "disliked"))
                rows += [index[f["item_id"]] for f in removed][: k - len(rows)]
                self.topped_up += k - len(result.items)
            out[i] = rows
        return out
