"""`NotToRecommendTask`: a TFRS-style Task for positives *and* negatives, losses injected.

Works with any query / candidate towers, like `tfrs.tasks.Retrieval`: give it query
embeddings, candidate embeddings and each row's label, and it returns the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ntr.tfenv import tf  # first: it sets TF_USE_LEGACY_KERAS, which TFRS needs when imported

# isort: split
import tensorflow_recommenders as tfrs

from ntr.losses.functions import (
    MASKED_LOGIT,
    group_not_to_recommend_loss,
    not_to_recommend_loss,
    softmax_loss,
)
from ntr.pipelines.events import Label


class NotToRecommendTask(tf.keras.layers.Layer, tfrs.tasks.Task):
    """Softmax loss on positive targets + not-to-recommend loss on negative targets.

    loss = (sum_pos positive_loss + sum_neg w * negative_loss) / max(#positive rows, 1), where
    w = `explicit_weight` for EXPLICIT_NEGATIVE rows and `implicit_weight` for
    IMPLICIT_NEGATIVE rows; NEUTRAL and padding rows (any other label) add nothing. A negative
    row with a non-empty `group_mask` row uses `group_loss` (the whole creator / category)
    instead of `negative_loss`.

    Args:
      explicit_weight: NTR weight of explicit negatives (dislike, not interested, ...).
      implicit_weight: NTR weight of implicit negatives (fast skips).
      positive_loss: f(logits [n, m], target_index [n]) -> [n]; default softmax cross-entropy.
      negative_loss: f(logits, target_index, weights [n]) -> [n]; default `-w log(1 - p)`.
      group_loss: f(logits, group_mask [n, m], weights [n]) -> [n]; default group NTR.
      positive_metrics: metrics updated as m.update_state(logits, target_index, weight) on
        positive rows (e.g. `TopKHitRate(10)`).
      negative_metrics: the same on explicit-negative rows (e.g. NegHit@10).
      temperature: logits are divided by it when given.
    """

    def __init__(
        self,
        explicit_weight: float = 1.0,
        implicit_weight: float = 0.1,
        positive_loss: Callable = softmax_loss,
        negative_loss: Callable = not_to_recommend_loss,
        group_loss: Callable = group_not_to_recommend_loss,
        positive_metrics: Sequence[tf.keras.metrics.Metric] = (),
        negative_metrics: Sequence[tf.keras.metrics.Metric] = (),
        temperature: float | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.explicit_weight = float(explicit_weight)
        self.implicit_weight = float(implicit_weight)
        self.positive_loss = positive_loss
        self.negative_loss = negative_loss
        self.group_loss = group_loss
        self.positive_metrics = list(positive_metrics)
        self.negative_metrics = list(negative_metrics)
        self.temperature = temperature

    def call(
        self,
        query_embeddings: tf.Tensor,
        candidate_embeddings: tf.Tensor,
        labels: tf.Tensor,
        target_index: tf.Tensor | None = None,
        candidate_ids: tf.Tensor | None = None,
        candidate_sampling_probability: tf.Tensor | None = None,
        group_mask: tf.Tensor | Callable | None = None,
        compute_metrics: bool = True,
    ) -> tf.Tensor:
        """The loss of one batch.

        Args:
          query_embeddings: [n, dim], one row per target event.
          candidate_embeddings: [m, dim].
          labels: [n] int `Label` values of the targets.
          target_index: [n] int column of each row's target; None means row i's target is
            candidate i (in-batch candidates, as in `tfrs.tasks.Retrieval`).
          candidate_ids: [m] ids; with them, candidates sharing the target's id other than the
            target's own column (accidental hits) are masked.
          candidate_sampling_probability: [m] sampling probabilities q; logits get -log q
            (logQ correction for sampled candidates).
          group_mask: [n, m] bool, the disliked group of each negative row (may be all False),
            or a function rows [r] -> [r, m] bool that builds it for the negative rows only.
          compute_metrics: update the injected metrics.

        Returns:
          Scalar loss.
        """
        labels = tf.cast(labels, tf.int32)
        if target_index is None:
            target_index = tf.range(tf.shape(query_embeddings)[0])
        target_index = tf.cast(target_index, tf.int32)
        # Score only the rows that carry a loss or a metric: neutral rows are skipped, which on
        # a full corpus saves a [rows, items] softmax per skipped row.
        positive_rows = tf.where(labels == int(Label.POSITIVE))[:, 0]
        explicit = tf.cast(labels == int(Label.EXPLICIT_NEGATIVE), tf.float32)
        implicit = tf.cast(labels == int(Label.IMPLICIT_NEGATIVE), tf.float32)
        negative_weight = self.explicit_weight * explicit + self.implicit_weight * implicit
        pos_logits, pos_index = self._logits(
            query_embeddings,
            candidate_embeddings,
            target_index,
            positive_rows,
            candidate_ids,
            candidate_sampling_probability,
        )
        total = tf.reduce_sum(self.positive_loss(pos_logits, pos_index))
        if self.explicit_weight or self.implicit_weight:
            negative_rows = tf.where(negative_weight > 0)[:, 0]
            logits, index = self._logits(
                query_embeddings,
                candidate_embeddings,
                target_index,
                negative_rows,
                candidate_ids,
                candidate_sampling_probability,
            )
            weight = tf.gather(negative_weight, negative_rows)
            if group_mask is None:
                total += tf.reduce_sum(self.negative_loss(logits, index, weight))
            else:
                mask = (
                    group_mask(negative_rows)
                    if callable(group_mask)
                    else tf.gather(group_mask, negative_rows)
                )
                has_group = tf.cast(tf.reduce_any(mask, axis=1), logits.dtype)
                total += tf.reduce_sum(self.group_loss(logits, mask, weight * has_group))
                total += tf.reduce_sum(self.negative_loss(logits, index, weight * (1.0 - has_group)))

        if compute_metrics:
            for metric in self.positive_metrics:
                metric.update_state(pos_logits, pos_index)
            if self.negative_metrics:
                explicit_rows = tf.where(explicit > 0)[:, 0]
                logits, index = self._logits(
                    query_embeddings,
                    candidate_embeddings,
                    target_index,
                    explicit_rows,
                    candidate_ids,
                    candidate_sampling_probability,
                )
                for metric in self.negative_metrics:
                    metric.update_state(logits, index)
        num_positive = tf.cast(tf.shape(positive_rows)[0], pos_logits.dtype)
        return total / tf.maximum(num_positive, 1.0)

    def _logits(self, queries, candidates, target_index, rows, candidate_ids, probability):
        """Logits [len(rows), m] of the chosen rows, corrected, and their target columns."""
        index = tf.gather(target_index, rows)
        logits = tf.matmul(tf.gather(queries, rows), candidates, transpose_b=True)
        if self.temperature:
            logits /= self.temperature
        if probability is not None:
            logits -= tf.math.log(tf.cast(probability, logits.dtype))[tf.newaxis, :]
        if candidate_ids is not None:
            target_ids = tf.gather(candidate_ids, index)
            same = tf.equal(target_ids[:, tf.newaxis], candidate_ids[tf.newaxis, :])
            own = tf.one_hot(index, tf.shape(logits)[1], on_value=True, off_value=False)
            logits = tf.where(same & ~own, MASKED_LOGIT, logits)
        return logits, index
