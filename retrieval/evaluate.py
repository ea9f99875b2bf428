"""Full-corpus evaluation: rank every item for every target, history filtered, then metrics.

Never 100 sampled negatives: each target is ranked against the whole catalogue. Items the user
already had in the window before the target are removed from the ranking (except the target
itself, so a re-watch can still be ranked), as are the padding and out-of-vocabulary tokens.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ntr.pipelines.events import LOGGING_COLUMNS, Label
from ntr.retrieval import metrics
from ntr.retrieval.data import NUM_RESERVED, sequence_dataset
from ntr.retrieval.model import NTRModel
from ntr.tfenv import tf

DAY_S = 86400


@dataclasses.dataclass
class RankedTargets:
    """Per target (length q): `label`, `reason`, `item` tokens, `rank` (0-based, history
    filtered), `log_p` (log-softmax of the target over the filtered corpus), `top` [q, k_max]
    item tokens, and `row`, `position` into the windows' `row_items`, `row_labels`,
    `row_timestamps`, `row_watch_ms` [rows, seq_len]; with `logging`, also `row_is_random`
    and `row_propensity` [rows, seq_len] (-1: unknown)."""

    label: np.ndarray
    reason: np.ndarray
    item: np.ndarray
    rank: np.ndarray
    log_p: np.ndarray
    top: np.ndarray
    row: np.ndarray
    position: np.ndarray
    row_items: np.ndarray
    row_labels: np.ndarray
    row_timestamps: np.ndarray
    row_watch_ms: np.ndarray
    row_is_random: np.ndarray | None = None
    row_propensity: np.ndarray | None = None

    def at_targets(self, rows: np.ndarray) -> np.ndarray:
        """A per-window array `rows` [rows, seq_len] read at each target's position: [q]."""
        return rows[self.row, self.position]


# Scores of one ranking chunk are [queries, num_items] floats, copied a few times (filter,
# comparison, top-k): capping queries x items at 2^27 keeps a chunk near 0.5 GiB a copy, so a
# 10^6-item catalogue ranks 134 targets at a time instead of OOM-ing on a 1,280-target batch.
RANK_CHUNK_ELEMENTS = 1 << 27


def _rank_chunk(
    query: tf.Tensor,
    item: tf.Tensor,
    position: tf.Tensor,
    history: tf.Tensor,
    candidates: tf.Tensor,
    k_max: int,
) -> dict:
    """Rank `query` [q, dim] (targets `item`, `position` [q]; window items `history`
    [q, seq_len]) against `candidates` [num_items, dim]: `rank`, `log_p` [q], `top` [q, k_max]."""
    scores = tf.matmul(query, candidates, transpose_b=True)  # [q, num_items]
    column = item - NUM_RESERVED
    target_score = tf.gather(scores, column, axis=1, batch_dims=1)
    # History filter: (query, column) pairs of events before the target, other than the target.
    seq = tf.range(tf.shape(history)[1])[tf.newaxis, :]
    drop = (seq < position[:, tf.newaxis]) & (history >= NUM_RESERVED) & (history != item[:, tf.newaxis])
    where = tf.cast(tf.where(drop), tf.int32)
    columns = tf.gather_nd(history, where) - NUM_RESERVED
    indices = tf.stack([where[:, 0], columns], axis=1)
    scores = tf.tensor_scatter_nd_update(scores, indices, tf.fill([tf.shape(indices)[0]], -np.inf))
    rank = tf.reduce_sum(tf.cast(scores > target_score[:, tf.newaxis], tf.int32), axis=1)
    log_p = target_score - tf.reduce_logsumexp(scores, axis=1)
    top = tf.math.top_k(scores, k=k_max).indices + NUM_RESERVED
    return {"rank": rank, "log_p": log_p, "top": top}


def _rank_functions(model: NTRModel, k_max: int):
    """Traced (targets, chunk ranking) functions per (model, k_max), reused across calls (e.g.
    each epoch); shapes vary per batch, hence reduce_retracing."""
    cache = model.__dict__.setdefault("_ntr_rank_functions", {})
    if k_max not in cache:
        cache[k_max] = (
            tf.function(lambda batch: model.target_queries(batch, training=False), reduce_retracing=True),
            tf.function(
                lambda query, item, position, history, candidates: _rank_chunk(
                    query, item, position, history, candidates, k_max
                ),
                reduce_retracing=True,
            ),
        )
    return cache[k_max]


def _rank_batch(model: NTRModel, batch: dict, candidates: tf.Tensor, k_max: int) -> dict:
    """Every target of one window batch, ranked in chunks of at most RANK_CHUNK_ELEMENTS
    scores: the targets' `row`, `position`, `item`, `label`, `reason` [q] and `rank`, `log_p`
    [q], `top` [q, k_max] as NumPy arrays."""
    targets_fn, chunk_fn = _rank_functions(model, k_max)
    targets = targets_fn(batch)
    history = tf.gather(batch["item"], targets["row"])  # [q, seq_len]
    q = int(targets["item"].shape[0])
    chunk = max(1, RANK_CHUNK_ELEMENTS // int(candidates.shape[0]))
    parts: dict[str, list] = {}
    for start in range(0, max(q, 1), chunk):  # an empty batch still yields typed empty arrays
        stop = min(q, start + chunk)
        ranked = chunk_fn(
            targets["query"][start:stop],
            targets["item"][start:stop],
            targets["position"][start:stop],
            history[start:stop],
            candidates,
        )
        for name, value in ranked.items():
            parts.setdefault(name, []).append(value.numpy())
    out = {k: v.numpy() for k, v in targets.items() if k != "query"}
    return dict(out, **{name: np.concatenate(values) for name, values in parts.items()})


def rank_targets(
    model: NTRModel,
    data_dir: str,
    split: str,
    batch_size: int = 128,
    k_max: int = 100,
    progress=None,
    total_rows: int | None = None,
    logging: bool = False,
    share: float = 1.0,
) -> RankedTargets:
    """Rank every target of `split` (see module doc). `progress(done_rows, total_rows)`;
    `logging`: also keep the windows' logging columns (for `ntr.retrieval.offline`);
    `share`: rank only a fixed, user-fingerprinted share of the windows (`data.window_share`)."""
    candidates = model.candidate_embeddings()
    k_max = min(k_max, model.num_items)
    parts: dict[str, list] = {}
    offset = done = 0
    for batch in sequence_dataset(
        data_dir, split, batch_size, model.config.model.max_len, logging=logging, share=share
    ):
        logged = {name: batch.pop(name) for name in LOGGING_COLUMNS if name in batch}
        out = _rank_batch(model, batch, candidates, k_max)
        out["row"] = out["row"] + offset
        out["row_items"] = batch["item"].numpy()
        out["row_labels"] = batch["label"].numpy()
        out["row_timestamps"] = batch["timestamp"].numpy()
        out["row_watch_ms"] = batch["watch_ms"].numpy()
        for name, value in logged.items():
            out[f"row_{name}"] = value.numpy()
        for name, value in out.items():
            parts.setdefault(name, []).append(value)
        offset += int(batch["item"].shape[0])
        done += int(batch["item"].shape[0])
        if progress:
            progress(done, total_rows or done)
    if not parts:
        raise ValueError(f"the {split} split of {data_dir} has no windows: nothing to evaluate.")
    return RankedTargets(**{name: np.concatenate(values) for name, values in parts.items()})


def summarize(ranked: RankedTargets, ks: tuple[int, ...] = (10,), fhr_window_days: float = 7.0) -> dict:
    """Metric name -> {"mean", "se", "n"}.

    recall@k, ndcg@k: positive targets. neghit@k: explicit-negative targets in the top k
    (lower is better); neghit_implicit@k: the same for skips. delta_hr@k = recall@k - neghit@k
    (se combined as independent). fhr@k: queries whose top k holds a negative the user gives
    within `fhr_window_days`. auc / auc_implicit: log p of positive vs explicit / implicit
    negative targets.
    """
    positive = ranked.label == int(Label.POSITIVE)
    explicit = ranked.label == int(Label.EXPLICIT_NEGATIVE)
    implicit = ranked.label == int(Label.IMPLICIT_NEGATIVE)
    out = {}
    for k in ks:
        out[f"recall@{k}"] = metrics.mean_se(metrics.hit_at_k(ranked.rank[positive], k))
        out[f"ndcg@{k}"] = metrics.mean_se(metrics.ndcg_at_k(ranked.rank[positive], k))
        out[f"neghit@{k}"] = metrics.mean_se(metrics.hit_at_k(ranked.rank[explicit], k))
        out[f"neghit_implicit@{k}"] = metrics.mean_se(metrics.hit_at_k(ranked.rank[implicit], k))
        pos, neg = out[f"recall@{k}"], out[f"neghit@{k}"]
        if pos["n"] and neg["n"]:
            se = None if pos["se"] is None or neg["se"] is None else float(np.hypot(pos["se"], neg["se"]))
            out[f"delta_hr@{k}"] = {"mean": pos["mean"] - neg["mean"], "se": se, "n": pos["n"] + neg["n"]}
        else:
            out[f"delta_hr@{k}"] = {"mean": None, "se": None, "n": 0}
        hit, has_future = metrics.future_negative_hits(
            ranked.top,
            ranked.row,
            ranked.position,
            ranked.row_items,
            ranked.row_labels,
            ranked.row_timestamps,
            int(Label.EXPLICIT_NEGATIVE),
            int(fhr_window_days * DAY_S),
            k,
        )
        out[f"fhr@{k}"] = metrics.mean_se(hit[has_future])
    out["auc"] = metrics.auc(ranked.log_p[positive], ranked.log_p[explicit])
    out["auc_implicit"] = metrics.auc(ranked.log_p[positive], ranked.log_p[implicit])
    return out


def validation_ndcg(
    model: NTRModel, data_dir: str, k: int = 10, batch_size: int = 128, share: float = 1.0
) -> float:
    """Mean NDCG@k on the valid split's positive targets (the early-stopping criterion);
    `share` < 1 ranks a fixed sample of the windows (`train.valid_windows`)."""
    ranked = rank_targets(model, data_dir, "valid", batch_size=batch_size, k_max=k, share=share)
    value = metrics.mean_se(metrics.ndcg_at_k(ranked.rank[ranked.label == int(Label.POSITIVE)], k))["mean"]
    if value is None:
        raise ValueError(f"the valid split of {data_dir} has no positive targets: cannot early-stop on it.")
    return value
