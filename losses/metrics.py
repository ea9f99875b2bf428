"""Streaming metrics a Task can be given: where does each target land among the candidates?"""

from __future__ import annotations

from ntr.tfenv import tf


def target_rank(logits: tf.Tensor, target_index: tf.Tensor) -> tf.Tensor:
    """[batch] int32: how many candidates score strictly above each row's target (0 = first).

    Args:
      logits: [batch, num_candidates].
      target_index: [batch] int, the target's column.
    """
    target = tf.gather(logits, target_index, axis=1, batch_dims=1)
    return tf.reduce_sum(tf.cast(logits > target[:, tf.newaxis], tf.int32), axis=1)


class TopKHitRate(tf.keras.metrics.Mean):
    """Share of (weighted) targets ranked in the top `k` of their candidates.

    On positive targets this is HR@k (higher is better); on negative targets it is NegHit@k
    (lower is better). `update_state(logits, target_index, sample_weight)`.
    """

    def __init__(self, k: int = 10, name: str | None = None, **kwargs):
        super().__init__(name=name or f"hit@{k}", **kwargs)
        self.k = k

    def update_state(self, logits, target_index, sample_weight=None):
        hit = tf.cast(target_rank(logits, target_index) < self.k, tf.float32)
        return super().update_state(hit, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "k": self.k}
