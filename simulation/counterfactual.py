"""Counterfactual responsiveness: how much similar content leaves the top K after a dislike.

For a sampled (history, k) pair, with X the k-th item of the history:

    branch A:        the first k events, then X watched to the end (a long dwell);
    branch B(r):     branch A, then a dislike of X with reason r (r = "none": a dislike that
                     gives no reason, as in logs without reasons);
    branch B(skip):  branch A, then a skip of X (a 1 s view, an implicit negative).

Both branches ask the same ranker for its top K with the same seed. Per branch the top K is
described by similarity shares to X: the item itself, same creator, same category (any shared
category), X's embedding neighbours (its nearest items by cosine in the model's item space),
and "other" (neither creator nor category). Responsiveness of a share is the relative change
of its mean over pairs, mean(B) / mean(A) - 1: -0.6 means 60% less of that content after the
dislike. Its standard error and 95% interval come from a bootstrap over pairs. Collateral
suppression is the responsiveness of "other" (negative = unrelated content also went).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ntr.simulation.rankers import Ranker

SHARES = ("item", "creator", "category", "neighbours", "other")
DEFAULT_REASONS = ("creator", "topic", "quality", "repetitive", "offensive", "unknown", "skip")
LONG_WATCH_MS = 60_000  # branch A's watch when the item has no duration
NO_REASON = "none"  # the branch of a dislike without a stated reason


@dataclasses.dataclass(frozen=True)
class CounterfactualConfig:
    """Attributes:
    num_pairs: (history, k) pairs sampled (>= 2,000 for the reported figures).
    k: size of the compared top K.
    min_prefix: fewest events before X.
    reasons: dislike reasons to branch on; "skip" is the implicit-negative branch.
    neighbours: size of X's embedding neighbourhood.
    bootstrap: bootstrap resamples for the SE and 95% interval.
    batch_size: histories per ranker call.
    seed: pair sampling, ranker seeds and bootstrap.
    """

    num_pairs: int = 2000
    k: int = 20
    min_prefix: int = 5
    reasons: tuple[str, ...] = DEFAULT_REASONS
    neighbours: int = 50
    bootstrap: int = 2000
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self):
        if min(self.num_pairs, self.k, self.neighbours, self.bootstrap, self.batch_size) < 1:
            raise ValueError("num_pairs, k, neighbours, bootstrap and batch_size must be >= 1.")
        if self.min_prefix < 0:
            raise ValueError("min_prefix must be >= 0.")


@dataclasses.dataclass(frozen=True)
class Pair:
    """One counterfactual: `prefix` (events before X), X's row, and the time of X's watch."""

    prefix: list[dict]
    item_row: int
    timestamp: int
    seed: int


def sample_pairs(
    histories: list[list[dict]],
    item_index: dict[str, int],
    config: CounterfactualConfig,
    max_prefix: int | None = None,
) -> list[Pair]:
    """`config.num_pairs` pairs, drawn with replacement over histories long enough to cut.

    The k-th event must be on a catalogue item; the prefix keeps only catalogue items, and
    only its last `max_prefix` events: a model that reads max_len events must see the same
    prefix in both branches, and branch B is two events longer than the prefix.
    """
    rng = np.random.default_rng(config.seed)
    usable = [h for h in histories if len(h) > config.min_prefix]
    if not usable:
        raise ValueError(
            f"no history has more than min_prefix={config.min_prefix} events; lower it or use more data."
        )
    pairs = []
    attempts = 0
    while len(pairs) < config.num_pairs:
        attempts += 1
        if attempts > 20 * config.num_pairs:
            raise ValueError("too few histories on catalogue items to sample counterfactual pairs from.")
        history = usable[int(rng.integers(len(usable)))]
        k = int(rng.integers(config.min_prefix, len(history)))
        event = history[k]
        if event["item_id"] not in item_index:
            continue
        prefix = [e for e in history[:k] if e["item_id"] in item_index]
        if max_prefix is not None:
            prefix = prefix[len(prefix) - max_prefix :] if len(prefix) > max_prefix else prefix
        pairs.append(
            Pair(prefix, item_index[event["item_id"]], int(event["timestamp"]), int(rng.integers(2**31)))
        )
    return pairs


def branch_histories(pair: Pair, item_id: str, duration_ms: int | None, reason: str | None) -> list[dict]:
    """Branch A (`reason` None), B(reason) or B("skip") of a pair as an event history."""
    watch = {
        "item_id": item_id,
        "timestamp": pair.timestamp,
        "action": "complete",
        "watch_ms": duration_ms or LONG_WATCH_MS,
        "duration_ms": duration_ms,
    }
    if reason is None:
        return pair.prefix + [watch]
    if reason == "skip":
        # The two branches differ in one event, as for the dislikes (DESIGN.md).
        return pair.prefix + [watch, dict(watch, action="view", watch_ms=1000, timestamp=pair.timestamp + 1)]
    stated = None if reason == NO_REASON else reason
    dislike = {"item_id": item_id, "timestamp": pair.timestamp + 1, "action": "dislike", "reason": stated}
    return pair.prefix + [watch, dislike]


class Similarity:
    """Which items are similar to X, by creator, category and embedding neighbourhood."""

    def __init__(self, items: list[dict], embeddings: np.ndarray, neighbours: int):
        creators = {c: i for i, c in enumerate(sorted({item.get("creator_id") or "" for item in items}))}
        self.creator = np.array([creators[item.get("creator_id") or ""] for item in items])
        self.has_creator = np.array([bool(item.get("creator_id")) for item in items])
        names = sorted({c for item in items for c in item.get("categories", [])})
        column = {c: j for j, c in enumerate(names)}
        self.categories = np.zeros((len(items), max(1, len(names))), bool)
        for i, item in enumerate(items):
            for c in item.get("categories", []):
                self.categories[i, column[c]] = True
        unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        self._unit = unit.astype(np.float32)
        self.neighbours = min(neighbours, len(items) - 1)

    def neighbourhood(self, rows: np.ndarray) -> np.ndarray:
        """[n, neighbours] the nearest items (cosine) of each row, itself excluded."""
        scores = self._unit[rows] @ self._unit.T
        scores[np.arange(len(rows)), rows] = -np.inf
        return np.argpartition(-scores, self.neighbours - 1, axis=1)[:, : self.neighbours]

    def shares(self, x: np.ndarray, top: np.ndarray, hood: np.ndarray | None = None) -> np.ndarray:
        """[n, len(SHARES)] share of each top-K list [n, k] that is similar to x [n] by each measure.

        `hood` is `neighbourhood(x)` when the caller already has it (it is the same for every
        branch of a pair, and costs an [n, num_items] product).
        """
        same_item = top == x[:, None]
        same_creator = (self.creator[top] == self.creator[x][:, None]) & self.has_creator[x][:, None]
        same_category = (self.categories[top] & self.categories[x][:, None, :]).any(-1)
        hood = self.neighbourhood(x) if hood is None else hood
        neighbour = (top[:, :, None] == hood[:, None, :]).any(-1)
        other = ~same_creator & ~same_category
        return np.stack([m.mean(1) for m in (same_item, same_creator, same_category, neighbour, other)], 1)


def responsiveness(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, resamples: int) -> dict:
    """Relative change mean(b) / mean(a) - 1 of per-pair shares a, b [n], with bootstrap SE/CI.

    Returns {"value", "se", "ci95": [lo, hi], "share_a", "share_b", "n"}; value None when
    branch A never shows such content (nothing to suppress).
    """
    n = len(a)
    out = {"share_a": float(a.mean()), "share_b": float(b.mean()), "n": n}
    if a.mean() == 0:
        return {**out, "value": None, "se": None, "ci95": None}
    idx = rng.integers(0, n, size=(resamples, n))
    mean_a, mean_b = a[idx].mean(1), b[idx].mean(1)
    valid = mean_a > 0
    ratios = mean_b[valid] / mean_a[valid] - 1.0
    return {
        **out,
        "value": float(b.mean() / a.mean() - 1.0),
        "se": float(ratios.std(ddof=1)) if len(ratios) > 1 else 0.0,
        "ci95": [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))],
    }


def run_counterfactual(
    ranker: Ranker,
    histories: list[list[dict]],
    config: CounterfactualConfig,
    progress=None,
) -> dict:
    """Responsiveness of `ranker` per reason and similarity share.

    Args:
      ranker: what recommends (a model alone, or the serving recommender).
      histories: trajectories to cut pairs from (canonical events, oldest first).
      config: sizes, reasons, seed.
      progress: optional callable(done, total) after each batch.

    Returns:
      {"config", "pairs", "reasons": {reason: {share: responsiveness dict}}}.
    """
    model = ranker.model
    max_len = getattr(model, "max_len", None)
    pairs = sample_pairs(
        histories, model.item_index, config, None if max_len is None else max(0, max_len - 2)
    )
    similarity = Similarity(model.items, model.embeddings, config.neighbours)
    x = np.array([p.item_row for p in pairs])
    seeds = np.array([p.seed for p in pairs])
    hood = similarity.neighbourhood(x)
    branches = (None,) + tuple(config.reasons)
    shares = {}
    total, done = len(branches) * len(pairs), 0
    for reason in branches:
        tops = []
        for start in range(0, len(pairs), config.batch_size):
            chunk = pairs[start : start + config.batch_size]
            batch = [
                branch_histories(
                    p, model.item_ids[p.item_row], model.items[p.item_row].get("duration_ms"), reason
                )
                for p in chunk
            ]
            tops.append(ranker.rank(batch, config.k, seeds[start : start + len(chunk)]))
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        shares[reason] = similarity.shares(x, np.concatenate(tops), hood)
    rng = np.random.default_rng(config.seed + 1)
    result = {}
    for reason in config.reasons:
        result[reason] = {
            name: responsiveness(shares[None][:, j], shares[reason][:, j], rng, config.bootstrap)
            for j, name in enumerate(SHARES)
        }
    return {"config": dataclasses.asdict(config), "pairs": len(pairs), "reasons": result}
