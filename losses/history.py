"""History-side NTR pairs: which later targets a negative in the history speaks for.

A user who says "not this creator" at position s has said it for every later position t of the
window, not only for the slot of the disliked item. `history_pairs` lists the (s, t) pairs of a
batch of windows that history-side NTR puts a loss on: s a negative with an NTR weight, t > s
a positive target; each pair's group granularity comes from the reason at s (skips and
item-level reasons: the item itself).
"""

from __future__ import annotations

from ntr.pipelines.events import GRANULARITY_CODE, Granularity, Label
from ntr.tfenv import tf


def history_pairs(
    label: tf.Tensor,
    granularity: tf.Tensor,
    negative_ok: tf.Tensor,
    positive_target: tf.Tensor,
    explicit_weight: float,
    implicit_weight: float,
    decay: float = 1.0,
    normalise: bool = False,
) -> dict[str, tf.Tensor]:
    """The (negative s, later positive target t) pairs of a batch, with weights.

    Args:
      label: [batch, seq_len] int `Label` values.
      granularity: [batch, seq_len] int `GRANULARITY_CODE` of each event's reason; implicit
        negatives are taken as item-level whatever it says.
      negative_ok: [batch, seq_len] bool, events that may act as history negatives (real
        events on known items).
      positive_target: [batch, seq_len] bool, positive targets that carry a loss and have a
        query.
      explicit_weight / implicit_weight: w_h of explicit negatives / skips (0 = none).
      decay: weight factor per event between s and t: w_h * decay ** (t - s - 1).
      normalise: divide each pair's weight by the number of negatives of its kind (explicit /
        skip) before t, so a target carries at most w_h of each kind however many dislikes
        precede it (logs with many dislikes, such as ratings, otherwise drown the softmax).

    Returns:
      {"row", "target", "source": [p] int32 batch row, target position t and negative
      position s; "weight": [p] float32; "granularity": [p] int32}.
    """
    label = tf.cast(label, tf.int32)
    explicit = label == int(Label.EXPLICIT_NEGATIVE)
    implicit = label == int(Label.IMPLICIT_NEGATIVE)
    weight = explicit_weight * tf.cast(explicit, tf.float32) + implicit_weight * tf.cast(implicit, tf.float32)
    source_ok = negative_ok & (weight > 0)
    length = tf.shape(label)[1]
    later = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0) & ~tf.eye(length, dtype=tf.bool)
    # pair[b, t, s]: s < t, s a weighted negative, t a positive target.
    pair = later[tf.newaxis] & positive_target[:, :, tf.newaxis] & source_ok[:, tf.newaxis, :]
    where = tf.cast(tf.where(pair), tf.int32)
    row, target, source = where[:, 0], where[:, 1], where[:, 2]
    at_source = tf.stack([row, source], axis=1)
    at_target = tf.stack([row, target], axis=1)
    gap = tf.cast(target - source - 1, tf.float32)
    pair_weight = tf.gather_nd(weight, at_source) * tf.pow(tf.constant(decay, tf.float32), gap)
    if normalise:
        # Negatives of each kind strictly before t: exclusive cumulative counts [batch, seq_len].
        before_explicit = tf.cumsum(tf.cast(source_ok & explicit, tf.float32), axis=1, exclusive=True)
        before_implicit = tf.cumsum(tf.cast(source_ok & implicit, tf.float32), axis=1, exclusive=True)
        count = tf.where(
            tf.gather_nd(explicit, at_source),
            tf.gather_nd(before_explicit, at_target),
            tf.gather_nd(before_implicit, at_target),
        )
        pair_weight /= tf.maximum(count, 1.0)
    pair_granularity = tf.where(
        tf.gather_nd(explicit, at_source),
        tf.gather_nd(tf.cast(granularity, tf.int32), at_source),
        GRANULARITY_CODE[Granularity.ITEM],
    )
    return {
        "row": row,
        "target": target,
        "source": source,
        "weight": pair_weight,
        "granularity": pair_granularity,
    }
