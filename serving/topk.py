"""Top-K retrieval over item embeddings: one interface, interchangeable indexes.

`TopK.search(queries, k)` takes queries [batch, dim] and returns (scores [batch, k],
indices [batch, k]) by descending dot product, where an index is the row of the item
embeddings (= the line of item_ids.txt). `BruteForce` is exact NumPy; `ScaNN` wraps a
`scann_ops_pybind` searcher with its search-time settings.
"""

from __future__ import annotations

import abc
import dataclasses
import math

import numpy as np

# Brute force scores at most this many (query, item) pairs at once, to bound memory.
_BRUTE_FORCE_CHUNK = 2**24


class TopK(abc.ABC):
    """Maximum inner product search over a fixed set of item embeddings."""

    num_items: int
    dim: int

    @abc.abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items per query.

        Args:
          queries: [batch, dim] float32.
          k: number of neighbours, 1 <= k <= num_items.

        Returns:
          scores [batch, k] float32 and indices [batch, k] int64, best first.
        """

    def _check(self, queries: np.ndarray, k: int) -> np.ndarray:
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be [batch, {self.dim}], got shape {queries.shape}.")
        if not 1 <= k <= self.num_items:
            raise ValueError(f"k must be in [1, {self.num_items}] (the catalogue size), got {k}.")
        return queries


class BruteForce(TopK):
    """Exact top-k by a full matrix product (the oracle the ScaNN index is tuned against)."""

    def __init__(self, embeddings: np.ndarray):
        """Args: embeddings: [num_items, dim] float32 item embeddings."""
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.num_items, self.dim = self.embeddings.shape

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = self._check(queries, k)
        rows = max(1, _BRUTE_FORCE_CHUNK // self.num_items)
        scores, indices = [], []
        for start in range(0, len(queries), rows):
            block = queries[start : start + rows] @ self.embeddings.T  # [rows, num_items]
            # The k-th best score per row; every item at or above it is a candidate, so ties at
            # the cut are broken by the smaller index (argpartition alone picks among them at random).
            kth = -np.partition(-block, k - 1, axis=1)[:, k - 1]
            for row, threshold in zip(block, kth, strict=True):
                candidates = np.flatnonzero(row >= threshold)
                order = np.lexsort((candidates, -row[candidates]))[:k]
                indices.append(candidates[order].astype(np.int64))
                scores.append(row[candidates[order]])
        if not scores:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        return np.stack(scores), np.stack(indices)


@dataclasses.dataclass(frozen=True)
class SearchParams:
    """ScaNN's search-time knobs (None: the searcher has no tree / no reordering).

    Attributes:
      leaves_to_search: tree leaves probed per query (only for a tree-partitioned searcher).
      pre_reorder_num_neighbors: candidates scored approximately before exact re-scoring.
    """

    leaves_to_search: int | None = None
    pre_reorder_num_neighbors: int | None = None


class ScaNN(TopK):
    """A `scann_ops_pybind` searcher with fixed search-time parameters."""

    def __init__(
        self,
        searcher,
        num_items: int,
        dim: int,
        params: SearchParams | None = None,
        num_leaves: int | None = None,
    ):
        """Args:
        searcher: a built or loaded `scann_ops_pybind.ScannSearcher`.
        num_items / dim: shape of the embeddings it was built on.
        params: search-time settings; None uses the searcher's build-time defaults.
        num_leaves: the tree's leaf count (tree searchers): a search for more neighbours than
          the probed leaves hold probes more of them (see `search`).
        """
        self.searcher = searcher
        self.num_items, self.dim = num_items, dim
        self.params = params or SearchParams()
        self.num_leaves = num_leaves

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = self._check(queries, k)
        if len(queries) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        leaves = self.params.leaves_to_search
        if leaves is not None and self.num_leaves:
            # The probed leaves hold about leaves * num_items / num_leaves points; ScaNN pads a
            # result it cannot fill with row 0 and a NaN score. Probe 8x what k needs: a filtered
            # request asks wide because the nearest leaves hold what it excludes.
            leaves = min(self.num_leaves, max(leaves, math.ceil(8 * k * self.num_leaves / self.num_items)))
        scores, indices = self._search(queries, k, leaves)
        padded = np.isnan(scores).any(axis=1)
        if padded.any():
            # Uneven leaves: probe all of them for the queries that came back short.
            if leaves is None or not self.num_leaves or leaves >= self.num_leaves:
                raise RuntimeError(
                    f"ScaNN returned fewer than k={k} neighbours; give ScaNN(num_leaves=) the tree's "
                    "leaf count (load_index does) or ask for fewer."
                )
            scores[padded], indices[padded] = self._search(queries[padded], k, self.num_leaves)
        return scores, indices

    def _search(self, queries: np.ndarray, k: int, leaves: int | None) -> tuple[np.ndarray, np.ndarray]:
        kwargs = {"final_num_neighbors": k}
        if leaves is not None:
            kwargs["leaves_to_search"] = leaves
        if self.params.pre_reorder_num_neighbors is not None:
            # Reordering fewer candidates than k would return fewer than k.
            kwargs["pre_reorder_num_neighbors"] = max(k, self.params.pre_reorder_num_neighbors)
        indices, scores = self.searcher.search_batched(queries, **kwargs)
        return scores.astype(np.float32), indices.astype(np.int64)
