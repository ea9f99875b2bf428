"""Loss functions on logits: the plain pieces any query/candidate towers can use.

Shapes: `logits` are `[batch, num_candidates]` scores of each query against candidates.
Every function returns per-example losses `[batch]` (reduce them as the caller's Task wants).
"""

from __future__ import annotations

import math

from ntr.tfenv import tf

# 1 - p is floored at this value, so -log(1 - p) <= ~13.8 and its gradient stays finite as p -> 1.
MIN_ONE_MINUS_P = 1e-6
# Score given to masked candidates (accidental hits, group complements): exp() underflows to 0.
MASKED_LOGIT = -1e9


def log1mexp(log_p: tf.Tensor, min_one_minus_p: float = MIN_ONE_MINUS_P) -> tf.Tensor:
    """log(1 - p) from log p, stably.

    `log(-expm1(x))` is accurate for x near 0 (p near 1) and `log1p(-exp(x))` for very negative
    x (p near 0); log p is clamped to log(1 - min_one_minus_p) first, so p -> 1 gives a bounded
    value and a zero (not infinite) gradient.

    Args:
      log_p: log-probabilities, any shape, <= 0.

    Returns:
      log(1 - p), same shape.
    """
    x = tf.minimum(log_p, tf.constant(math.log1p(-min_one_minus_p), log_p.dtype))
    near_one = x > -math.log(2.0)  # the standard switch point (Maechler, 2012)
    safe_near = tf.where(near_one, x, -1.0)  # keep the unused branch's gradient finite
    safe_far = tf.where(near_one, -1.0, x)
    return tf.where(near_one, tf.math.log(-tf.math.expm1(safe_near)), tf.math.log1p(-tf.exp(safe_far)))


def softmax_loss(logits: tf.Tensor, target_index: tf.Tensor) -> tf.Tensor:
    """Softmax cross-entropy `-log p(target)` over all candidates.

    Args:
      logits: [batch, num_candidates].
      target_index: [batch] int, the target's column.

    Returns:
      [batch] losses.
    """
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target_index, logits=logits)


def not_to_recommend_loss(
    logits: tf.Tensor, target_index: tf.Tensor, weights: tf.Tensor | float = 1.0
) -> tf.Tensor:
    """NTR: `-w * log(1 - p(target))`, with p the softmax over the candidates.

    Args:
      logits: [batch, num_candidates].
      target_index: [batch] int, the column of the item not to recommend.
      weights: [batch] or scalar `w` (e.g. explicit vs implicit negative weight; 0 masks).

    Returns:
      [batch] losses, each in [0, -w * log(MIN_ONE_MINUS_P)].
    """
    log_p = -softmax_loss(logits, target_index)
    return -tf.cast(weights, logits.dtype) * log1mexp(log_p)


def topk_not_to_recommend_loss(
    logits: tf.Tensor, target_index: tf.Tensor, weights: tf.Tensor | float = 1.0, k: int = 10
) -> tf.Tensor:
    """NTR where it is seen: `-w * log(1 - p)` with p = sigmoid(s_target - bar), the bar a fixed
    (no-gradient) K-th best logit among the other candidates.

    Under a full softmax over thousands of items p(target) is ~1e-3 and the plain NTR gradient
    `w * p` does nothing measurable. Here p is the chance the disliked item beats the K-th item:
    about 1/2 or more when it sits in the top K (a strong push out), near 0 when it is already
    far below (no push, so nothing else is disturbed). Only the target and the query move.

    Args:
      logits: [batch, num_candidates].
      target_index: [batch] int, the column of the item not to recommend.
      weights: [batch] or scalar `w` (0 masks).
      k: the K of the top K the item must leave (clipped to num_candidates - 1).

    Returns:
      [batch] losses `w * softplus(s_target - bar)`.
    """
    target = tf.gather(logits, target_index, batch_dims=1)
    is_target = tf.range(tf.shape(logits)[1])[tf.newaxis, :] == tf.cast(target_index, tf.int32)[:, tf.newaxis]
    others = tf.where(is_target, tf.cast(MASKED_LOGIT, logits.dtype), logits)
    k = tf.minimum(k, tf.shape(logits)[1] - 1)
    bar = tf.stop_gradient(tf.math.top_k(others, k).values[:, -1])
    return tf.cast(weights, logits.dtype) * tf.nn.softplus(target - bar)


def group_not_to_recommend_loss(
    logits: tf.Tensor, group_mask: tf.Tensor, weights: tf.Tensor | float = 1.0
) -> tf.Tensor:
    """Group NTR: `-w * log(1 - sum_{i in G} p_i)` for a disliked creator / category G.

    Args:
      logits: [batch, num_candidates].
      group_mask: [batch, num_candidates] bool, True for candidates in the disliked group.
        A row with an empty group contributes 0.
      weights: [batch] or scalar.

    Returns:
      [batch] losses.
    """
    in_group = tf.where(group_mask, logits, MASKED_LOGIT)
    log_p_group = tf.reduce_logsumexp(in_group, axis=1) - tf.reduce_logsumexp(logits, axis=1)
    has_group = tf.reduce_any(group_mask, axis=1)
    loss = -tf.cast(weights, logits.dtype) * log1mexp(tf.minimum(log_p_group, 0.0))
    return tf.where(has_group, loss, tf.zeros_like(loss))


def sampled_softmax_loss(
    logits: tf.Tensor,
    target_ids: tf.Tensor,
    candidate_ids: tf.Tensor,
    candidate_log_q: tf.Tensor,
    target_index: tf.Tensor,
) -> tf.Tensor:
    """Softmax over sampled candidates with logQ correction and accidental-hit removal.

    In-batch candidates are drawn in proportion to their frequency q, which over-penalises
    popular items; subtracting log q from every logit corrects that (Yi et al., 2019). A
    candidate with the same id as the row's target (other than the target's own column) is an
    accidental hit and is masked out rather than pushed down.

    Args:
      logits: [batch, num_candidates].
      target_ids: [batch] item ids of the targets.
      candidate_ids: [num_candidates] item ids of the candidates.
      candidate_log_q: [num_candidates] log sampling probability of each candidate.
      target_index: [batch] int, the column holding each row's target.

    Returns:
      [batch] losses.
    """
    corrected = logits - candidate_log_q[tf.newaxis, :]
    same_id = tf.equal(target_ids[:, tf.newaxis], candidate_ids[tf.newaxis, :])
    own_column = tf.one_hot(target_index, tf.shape(logits)[1], on_value=True, off_value=False)
    corrected = tf.where(same_id & ~own_column, MASKED_LOGIT, corrected)
    return softmax_loss(corrected, target_index)


def history_not_to_recommend_loss(
    group_log_mass: tf.Tensor, log_normaliser: tf.Tensor, weights: tf.Tensor | float = 1.0
) -> tf.Tensor:
    """History-side NTR on one (dislike, later target) pair: `-w * log(1 - p_G)`.

    p_G = exp(group_log_mass - log_normaliser) is the probability of the disliked group G
    (creator, category or the item itself) among a candidate set: the whole corpus (the
    normaliser is the logsumexp of every logit), or only G and the position's actual next
    positive (normaliser `logaddexp(group_log_mass, target_logit)`), which makes the loss
    `w * softplus(group_log_mass - target_logit)`: G must rank below what the user did watch;
    or among G and a fixed bar (the K-th best logit, no gradient): G must leave the top K.

    Args:
      group_log_mass: [p] logsumexp of the logits of G's members.
      log_normaliser: [p] log of the candidate set's partition function (>= group_log_mass).
      weights: [p] or scalar (0 masks a pair).

    Returns:
      [p] losses.
    """
    log_p = tf.minimum(group_log_mass - log_normaliser, 0.0)
    return -tf.cast(weights, group_log_mass.dtype) * log1mexp(log_p)
