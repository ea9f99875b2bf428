"""The sequential retriever: a `tfrs.Model` trained on every next-event target of a window."""

from __future__ import annotations

import functools

from ntr.tfenv import tf  # first: it sets TF_USE_LEGACY_KERAS, which TFRS needs when imported

# isort: split
import tensorflow_recommenders as tfrs

from ntr.losses.functions import (
    MASKED_LOGIT,
    history_not_to_recommend_loss,
    not_to_recommend_loss,
    topk_not_to_recommend_loss,
)
from ntr.losses.history import history_pairs
from ntr.losses.metrics import TopKHitRate
from ntr.losses.tasks import NotToRecommendTask
from ntr.pipelines.events import GRANULARITY_CODE, Granularity, Label
from ntr.retrieval.config import RetrievalConfig
from ntr.retrieval.data import NUM_RESERVED
from ntr.retrieval.features import EventFeatures, initializer
from ntr.retrieval.items import ItemTable
from ntr.retrieval.negative_path import NegativePath
from ntr.retrieval.towers import CausalTransformer, ItemTower


def previous_position(attend: tf.Tensor) -> tf.Tensor:
    """[batch, seq_len] int32: for each position t, the last attendable position < t (-1: none).

    The state there is the model's query for the event at t: it has seen exactly the history
    before t (minus hidden negatives), never t itself.
    """
    length = tf.shape(attend)[1]
    positions = tf.where(attend, tf.range(length)[tf.newaxis, :], -1)
    before = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0) & ~tf.eye(length, dtype=tf.bool)
    return tf.reduce_max(tf.where(before[tf.newaxis], positions[:, tf.newaxis, :], -1), axis=-1)


def anchor_position(anchor: tf.Tensor) -> tf.Tensor:
    """[batch, seq_len] int32: for each position p, the last position <= p where `anchor` is
    True (-1: none)."""
    length = tf.shape(anchor)[1]
    positions = tf.where(anchor, tf.range(length)[tf.newaxis, :], -1)
    upto = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
    return tf.reduce_max(tf.where(upto[tf.newaxis], positions[:, tf.newaxis, :], -1), axis=-1)


def is_negative(label: tf.Tensor) -> tf.Tensor:
    return (label == int(Label.EXPLICIT_NEGATIVE)) | (label == int(Label.IMPLICIT_NEGATIVE))


def sampling_probability(
    log_share: tf.Tensor, in_batch_draws: tf.Tensor, uniform_draws: int, num_items: int, form: str
) -> tf.Tensor:
    """The q of each sampled candidate for the logQ correction (a constant factor cancels).

    Args:
      log_share: [m] log of each candidate's share of positive train targets.
      in_batch_draws: scalar float, how many in-batch targets were drawn.
      uniform_draws: how many candidates were drawn uniformly over `num_items`.
      num_items: the catalogue size.
      form: `popularity` (q = the share) or `mixture` (q = expected count among the draws,
        in_batch_draws * share + uniform_draws / num_items).

    Returns:
      [m] float32 q.
    """
    share = tf.exp(log_share)
    if form == "popularity":
        return share
    return in_batch_draws * share + float(uniform_draws) / float(num_items)


class NTRModel(tfrs.Model):
    """Query tower over event tokens, item tower over ids + metadata, NTR task.

    Args:
      config: the whole `RetrievalConfig` (model switches, and `train.seed` for init).
      table: item lookups of the data directory (`load_item_table`).
    """

    def __init__(self, config: RetrievalConfig, table: ItemTable, **kwargs):
        super().__init__(**kwargs)
        m, seed = config.model, config.train.seed
        self.config = config
        self.num_items = table.num_items
        self.num_categories = table.num_categories
        self.full_softmax = m.use_full_softmax(table.num_items)
        self.item_embedding = tf.keras.layers.Embedding(
            table.num_items + NUM_RESERVED, m.dim, embeddings_initializer=initializer(seed, 0)
        )
        self.transformer = CausalTransformer(m.dim, m.num_blocks, m.num_heads, m.ff_dim, m.dropout, seed)
        # XLA for the fixed-shape part ([batch, seq_len, dim] in and out); the loss gathers a
        # data-dependent number of targets, which XLA cannot compile.
        self._encode = (
            tf.function(self.transformer, jit_compile=True) if config.train.jit_compile else self.transformer
        )
        output_embedding = self.item_embedding
        if not m.tie_item_embeddings:
            output_embedding = tf.keras.layers.Embedding(
                table.num_items + NUM_RESERVED, m.dim, embeddings_initializer=initializer(seed, 10)
            )
        self.item_tower = ItemTower(
            output_embedding,
            table.item_creator,
            table.item_categories,
            table.num_creators,
            table.num_categories,
            m.dim,
            m.item_features,
            seed,
        )
        # Tokens embed the item as the item tower does (with creator and categories) when asked:
        # then a disliked token carries the creator and category the query should move from.
        input_items = self.item_embedding
        if m.token_item_features and m.item_features:
            input_items = ItemTower(
                self.item_embedding,
                table.item_creator,
                table.item_categories,
                table.num_creators,
                table.num_categories,
                m.dim,
                True,
                seed,
                creator_embedding=self.item_tower.creator_embedding,
                category_embedding=self.item_tower.category_embedding,
            )
        self.negative_path = None
        if m.negative_path:
            self.negative_path = NegativePath(
                self.item_tower,
                table.reason_granularity,
                # Kinds by reason: with reason tokens, or when each granularity has its own part.
                m.reason_inputs or m.negative_path_parts == "own",
                scale=m.negative_path_scale,
                decay=m.negative_path_decay,
                skips=m.negative_path_skips,
                parts=m.negative_path_parts,
                units=m.negative_path_units,
                trainable_strengths=not m.fit_reaction,
            )
        self.event_features = EventFeatures(
            input_items,
            table.num_actions,
            table.num_reasons,
            m.dim,
            m.max_len,
            m.reason_inputs,
            m.dropout,
            seed,
            m.action_gate_scale,
        )
        # With ntr_candidates="full" under a sampled softmax, NTR on negative targets is computed
        # here over the whole corpus instead of inside the task over the sampled candidates.
        self.full_ntr = m.ntr_candidates == "full" and not self.full_softmax
        self.negative_loss = (
            functools.partial(topk_not_to_recommend_loss, k=m.ntr_topk)
            if m.ntr_form == "topk"
            else not_to_recommend_loss
        )
        self.task = NotToRecommendTask(
            negative_loss=self.negative_loss,
            explicit_weight=0.0 if self.full_ntr else m.explicit_weight,
            implicit_weight=0.0 if self.full_ntr else m.implicit_weight,
            positive_metrics=[TopKHitRate(10, name="hr@10")],
            negative_metrics=[TopKHitRate(10, name="neghit@10")],
        )
        self.candidate_tokens = tf.range(NUM_RESERVED, table.num_items + NUM_RESERVED)
        self.item_log_q = tf.constant(table.item_log_q)
        self.reason_granularity = tf.constant(table.reason_granularity)

    def attendable(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        """[batch, seq_len] bool: what the Transformer attends to: real events, minus negatives
        when they are hidden."""
        if self.config.model.negative_inputs:
            return features["mask"]
        return features["mask"] & ~is_negative(features["label"])

    def query_events(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        """[batch, seq_len] bool: events a query may follow. With a negative path every real
        event (a negative hidden from the Transformer still acts through the path)."""
        return features["mask"] if self.negative_path is not None else self.attendable(features)

    def states(self, features: dict[str, tf.Tensor], training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """States [batch, seq_len, dim] and, per position, the position of its query state.

        State p is the query for the event after p. With `query_anchor="engaged"` (or a negative
        path over a Transformer blind to negatives) it is the Transformer state of the last
        non-negative event <= p (which has attended to every event before it it may see), so
        negatives after that event act only through the negative path: state p = T[anchor(p)]
        - path(<= p).
        """
        m = self.config.model
        attend = self.attendable(features)
        tokens = self.event_features(features, training=training)
        states = self._encode(tokens, attend, training=training)
        query_pos = previous_position(self.query_events(features))
        if m.query_anchor == "engaged" or (self.negative_path is not None and not m.negative_inputs):
            anchor = anchor_position(attend & ~is_negative(features["label"]))
            states = tf.gather(states, tf.maximum(anchor, 0), axis=1, batch_dims=1)
            states *= tf.cast(anchor >= 0, states.dtype)[..., tf.newaxis]
            # No engaged event yet: no query (a zero vector would still be trained on).
            query_anchor = tf.gather(anchor, tf.maximum(query_pos, 0), axis=1, batch_dims=1)
            query_pos = tf.where(query_anchor >= 0, query_pos, -1)
        if self.negative_path is not None:
            states -= self.negative_path(features, features["mask"])
        return states, query_pos

    def query_embedding(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        """[batch, dim]: the query for the event after the whole history (serving)."""
        states, _ = self.states(features)
        length = tf.shape(states)[1]
        events = self.query_events(features)
        last = tf.reduce_max(tf.where(events, tf.range(length)[tf.newaxis, :], -1), axis=1)
        query = tf.gather(states, tf.maximum(last, 0), axis=1, batch_dims=1)
        return query * tf.cast(last >= 0, query.dtype)[:, tf.newaxis]

    @staticmethod
    def target_positions(features: dict[str, tf.Tensor], query_pos: tf.Tensor) -> tf.Tensor:
        """[batch, seq_len] bool: `is_target` events with a known item and some history."""
        return (
            (features["is_target"] > 0)
            & features["mask"]
            & (query_pos >= 0)
            & (features["item"] >= NUM_RESERVED)
        )

    def target_queries(
        self,
        features: dict[str, tf.Tensor],
        training: bool = False,
        states: tuple[tf.Tensor, tf.Tensor] | None = None,
    ) -> dict[str, tf.Tensor]:
        """Flattened targets of a batch: `query` [n, dim] and `row`, `position`, `item`,
        `label`, `reason` [n] for every target position. `states`: `self.states(features)`
        when the caller has it."""
        states, query_pos = states or self.states(features, training=training)
        valid = self.target_positions(features, query_pos)
        where = tf.cast(tf.where(valid), tf.int32)
        row, position = where[:, 0], where[:, 1]
        query = tf.gather_nd(states, tf.stack([row, tf.gather_nd(query_pos, where)], axis=1))
        out = {"query": query, "row": row, "position": position}
        for name in ("item", "label", "reason"):
            out[name] = tf.gather_nd(features[name], where)
        return out

    def candidate_embeddings(self) -> tf.Tensor:
        """[num_items, dim] embeddings of every real item (column j = token j + NUM_RESERVED)."""
        return self.item_tower(self.candidate_tokens)

    def group_mask(self, target_items: tf.Tensor, reasons: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        """[n, m] bool: candidates in the disliked group (creator or category) of each target."""
        return self.granularity_mask(target_items, tf.gather(self.reason_granularity, reasons), candidates)

    def granularity_mask(
        self, target_items: tf.Tensor, granularity: tf.Tensor, candidates: tf.Tensor
    ) -> tf.Tensor:
        """[n, m] bool: candidates sharing the creator (granularity creator) or a category
        (granularity category) of each target item [n]; all False for item granularity."""
        tower = self.item_tower
        t_creator = tf.gather(tower.item_creator, target_items)
        c_creator = tf.gather(tower.item_creator, candidates)
        same_creator = (t_creator[:, tf.newaxis] == c_creator[tf.newaxis, :]) & (t_creator[:, tf.newaxis] > 0)
        # Category overlap as a product of multi-hot rows: [n, C] x [C, m] > 0.
        t_hot = tf.reduce_max(
            tf.one_hot(tf.gather(tower.item_categories, target_items), self.num_categories), 1
        )
        c_hot = tf.reduce_max(
            tf.one_hot(tf.gather(tower.item_categories, candidates), self.num_categories), 1
        )
        t_hot *= tf.cast(tf.range(self.num_categories) > 0, t_hot.dtype)  # padding is no category
        same_category = tf.matmul(t_hot, c_hot, transpose_b=True) > 0
        creator_rows = (granularity == GRANULARITY_CODE[Granularity.CREATOR])[:, tf.newaxis]
        category_rows = (granularity == GRANULARITY_CODE[Granularity.CATEGORY])[:, tf.newaxis]
        return (creator_rows & same_creator) | (category_rows & same_category)

    def history_loss(
        self,
        features: dict[str, tf.Tensor],
        states: tf.Tensor,
        query_pos: tf.Tensor,
        candidates: tf.Tensor,
        candidate_embeddings: tf.Tensor,
        log_q: tf.Tensor | None,
    ) -> tf.Tensor:
        """Summed history-side NTR of a batch (scalar; the caller divides by #positives).

        Args:
          features: the batch's [batch, seq_len] tensors.
          states, query_pos: `self.states(features)`: [batch, seq_len, dim], [batch, seq_len].
          candidates: [m] item tokens of the softmax; candidate_embeddings: [m, dim].
          log_q: [m] logQ correction of sampled candidates, or None (full softmax).
        """
        m = self.config.model
        item = features["item"]
        positive_target = self.target_positions(features, query_pos) & (
            features["label"] == int(Label.POSITIVE)
        )
        pairs = history_pairs(
            features["label"],
            tf.gather(self.reason_granularity, features["reason"]),
            features["mask"] & (item >= NUM_RESERVED),
            positive_target,
            m.history_weight,
            m.history_implicit_weight,
            m.history_decay,
            m.history_normalise,
        )
        at_target = tf.stack([pairs["row"], pairs["target"]], 1)
        pair_query = tf.gather_nd(states, tf.stack([pairs["row"], tf.gather_nd(query_pos, at_target)], 1))
        target_item = tf.gather_nd(item, at_target)
        source_item = tf.gather_nd(item, tf.stack([pairs["row"], pairs["source"]], 1))

        if not m.history_trains_items:
            candidate_embeddings = tf.stop_gradient(candidate_embeddings)

        def item_embeddings(items):  # [p, dim]
            embeddings = self.item_tower(items)
            return embeddings if m.history_trains_items else tf.stop_gradient(embeddings)

        def logits_of(queries):  # [r, m] logits over the softmax's candidates, corrected like it
            logits = tf.matmul(queries, candidate_embeddings, transpose_b=True)
            return logits if log_q is None else logits - log_q[tf.newaxis, :]

        def direct_logit(items):  # [p] logit of one item per pair, corrected like the softmax's
            score = tf.reduce_sum(pair_query * item_embeddings(items), axis=1)
            if log_q is not None:
                score -= tf.gather(self.item_log_q, items - NUM_RESERVED)
            return score

        target_logit = direct_logit(target_item)
        # Item-level pairs: G is the negative item itself (nothing when it is the target).
        group_log_mass = direct_logit(source_item)
        weight = pairs["weight"] * tf.cast(source_item != target_item, tf.float32)
        # Creator / category pairs (few: explicit negatives only): logsumexp over the group's
        # candidates, the target left out.
        is_group = pairs["granularity"] != GRANULARITY_CODE[Granularity.ITEM]
        group_pairs = tf.cast(tf.where(is_group)[:, 0], tf.int32)
        mask = self.granularity_mask(
            tf.gather(source_item, group_pairs), tf.gather(pairs["granularity"], group_pairs), candidates
        )
        mask &= tf.gather(target_item, group_pairs)[:, tf.newaxis] != candidates[tf.newaxis, :]
        group_logits = tf.where(mask, logits_of(tf.gather(pair_query, group_pairs)), MASKED_LOGIT)
        group_log_mass = tf.tensor_scatter_nd_update(
            group_log_mass, group_pairs[:, tf.newaxis], tf.reduce_logsumexp(group_logits, axis=1)
        )
        weight = tf.tensor_scatter_nd_update(
            weight,
            group_pairs[:, tf.newaxis],
            tf.gather(pairs["weight"], group_pairs) * tf.cast(tf.reduce_any(mask, axis=1), tf.float32),
        )
        if m.history_form == "target":
            reference = target_logit
        else:
            # Per distinct target position, computed once over its row of logits [r, m]: the
            # corpus normaliser, or the K-th best logit (a fixed bar G must fall under).
            length = tf.shape(item)[1]
            keys, pair_row = tf.unique(pairs["row"] * length + pairs["target"])
            first = tf.math.unsorted_segment_min(tf.range(tf.size(pair_row)), pair_row, tf.size(keys))
            row_logits = logits_of(tf.gather(pair_query, first))
            if m.history_form == "corpus":
                normaliser = tf.gather(tf.reduce_logsumexp(row_logits, axis=1), pair_row)
                return tf.reduce_sum(history_not_to_recommend_loss(group_log_mass, normaliser, weight))
            k = tf.minimum(m.history_topk, tf.shape(row_logits)[1])
            kth = tf.stop_gradient(tf.math.top_k(row_logits, k).values[:, -1])
            reference = tf.gather(kth, pair_row)
        normaliser = tf.math.reduce_logsumexp(tf.stack([group_log_mass, reference], 1), axis=1)
        return tf.reduce_sum(history_not_to_recommend_loss(group_log_mass, normaliser, weight))

    def compute_loss(
        self, features: dict[str, tf.Tensor], training: bool = False, compute_metrics: bool | None = None
    ) -> tf.Tensor:
        """The batch's loss (scalar). `compute_metrics`: update the task's metrics (default: when
        not training; the reaction fit runs without dropout and without metrics)."""
        m = self.config.model
        states = self.states(features, training=training)
        targets = self.target_queries(features, training=training, states=states)
        if self.full_softmax:
            candidates = self.candidate_tokens
            target_index = targets["item"] - NUM_RESERVED
            probability = None
        else:
            # In-batch candidates + uniform extras, each id once (so no accidental hits), with
            # logQ from the train frequency of positives. Only targets that carry a loss are
            # candidates: positives_only must not see negative items even as sampled negatives.
            uniform = tf.random.uniform(
                [self.config.model.num_uniform_candidates],
                NUM_RESERVED,
                self.num_items + NUM_RESERVED,
                tf.int32,
            )
            carries_loss = targets["label"] == int(Label.POSITIVE)
            if m.explicit_weight > 0:
                carries_loss |= targets["label"] == int(Label.EXPLICIT_NEGATIVE)
            if m.implicit_weight > 0:
                carries_loss |= targets["label"] == int(Label.IMPLICIT_NEGATIVE)
            in_batch = tf.where(carries_loss, targets["item"], targets["item"][:1])
            candidates, index = tf.unique(tf.concat([in_batch, uniform], axis=0))
            target_index = index[: tf.shape(targets["item"])[0]]
            probability = sampling_probability(
                tf.gather(self.item_log_q, candidates - NUM_RESERVED),
                tf.reduce_sum(tf.cast(carries_loss, tf.float32)),
                self.config.model.num_uniform_candidates,
                self.num_items,
                m.sampled_log_q,
            )
        candidate_embeddings = self.item_tower(candidates)
        group_mask = None
        if self.config.model.group_ntr:

            def group_mask(rows):
                items, reasons = tf.gather(targets["item"], rows), tf.gather(targets["reason"], rows)
                return self.group_mask(items, reasons, candidates)

        loss = self.task(
            targets["query"],
            candidate_embeddings,
            targets["label"],
            target_index=target_index,
            candidate_sampling_probability=probability,
            group_mask=group_mask,
            compute_metrics=not training if compute_metrics is None else compute_metrics,
        )
        num_positive = tf.maximum(
            tf.reduce_sum(tf.cast(targets["label"] == int(Label.POSITIVE), tf.float32)), 1.0
        )
        if self.full_ntr:
            loss += self.full_corpus_ntr(targets) / num_positive
        if m.history_weight or m.history_implicit_weight:
            log_q = None if probability is None else tf.math.log(probability)
            history = self.history_loss(features, *states, candidates, candidate_embeddings, log_q)
            loss += history / num_positive
        return loss

    def full_corpus_ntr(self, targets: dict[str, tf.Tensor]) -> tf.Tensor:
        """Summed `-w log(1 - p)` of the negative targets, p over every item (scalar)."""
        m = self.config.model
        label = targets["label"]
        weight = m.explicit_weight * tf.cast(label == int(Label.EXPLICIT_NEGATIVE), tf.float32)
        weight += m.implicit_weight * tf.cast(label == int(Label.IMPLICIT_NEGATIVE), tf.float32)
        rows = tf.where(weight > 0)[:, 0]
        logits = tf.matmul(tf.gather(targets["query"], rows), self.candidate_embeddings(), transpose_b=True)
        index = tf.gather(targets["item"], rows) - NUM_RESERVED
        return tf.reduce_sum(self.negative_loss(logits, index, tf.gather(weight, rows)))
