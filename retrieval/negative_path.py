"""A direct path from negatives in the history to the query (DFN / TransAct style).

Attention dilutes one disliked event among ~50 and the final layer norm rescales what gets
through, so a Transformer learns "not this creator any more" slowly from a few hundred
dislikes. This path subtracts, from every later query, a learned mix of the disliked item's
id, creator and category embeddings (the item tower's own parts): since a score is
`query . (id + creator + category)`, subtracting `b * creator_emb(c)` lowers every item of
creator c by about `b * |creator_emb(c)|^2` and leaves unrelated items nearly as they were.
The query stays one vector, so serving is still an ANN lookup.

The mix has one coefficient per (kind of negative, part): kinds are explicit negatives by the
granularity of their reason (item, creator, category; all item-level without reason inputs)
and skips. Coefficients start at 0, so the path starts switched off and training decides.
They are stored divided by `scale`: Adam moves a parameter by about the learning rate per step
whatever its size, and a useful coefficient is of the order of the query norm over the
embedding norm (queries ~12, embeddings ~0.35), which unscaled it would not reach in a
training run (measured: it stopped at ~0.5, still rising, and moved nothing). `ntr_history`
uses scale 100, explicit negatives only and a decay of 0.9 per event; on the default world it
learnt (x100) id 45 for item-level reasons, creator 26 (category -5) for creator reasons, and
category 29 for topic reasons: each kind suppresses its own group.

Two switches make the strengths comparable and the granularity structural (`ntr_fitted`):

- `units="logit"`: each part is divided by its squared norm, so a coefficient b lowers the
  disliked group's part of every score by exactly b (a logit drop), whatever the part's norm.
  Strengths of different kinds and parts are then in one unit and can stand in for each other.
- `parts="own"`: a creator-granularity reason may subtract only the creator part, a category
  reason only the category part, and each part is first made orthogonal to the coarser ones
  (`own_directions`: the creator part loses its category's direction, the id part both). A
  free mix let a creator dislike take the whole category with it (measured on the `--policy
  mix` world: category -77% after a creator dislike). Item-level reasons (and reasonless
  dislikes, all item-level) and skips keep all three parts: what such a dislike means for its
  creator and category is the log's to say, through the fit.

`retrieval/reaction.py` fits the strengths on the validation split after training.
"""

from __future__ import annotations

from ntr.pipelines.events import GRANULARITY_CODE, Granularity, Label
from ntr.retrieval.towers import ItemTower
from ntr.tfenv import tf

NUM_KINDS = 4  # explicit by granularity code (item 0, creator 1, category 2), then skips (3)
SKIP_KIND = 3
PARTS = ("free", "own")
UNITS = ("embedding", "logit")
# [NUM_KINDS, 3] which (id, creator, category) part each kind may use with parts="own".
OWN_PARTS = ((1.0, 1.0, 1.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0))
_EPSILON = 1e-6  # a part with a smaller squared norm (no creator, no category) stays zero


def per_logit(vectors: tf.Tensor) -> tf.Tensor:
    """[..., dim] vectors v divided by |v|^2, so `(q - b * out) . v = q . v - b`; 0 where |v|^2 is
    below _EPSILON (an item without creator or category)."""
    squared = tf.reduce_sum(tf.square(vectors), axis=-1, keepdims=True)
    return tf.where(squared >= _EPSILON, vectors / tf.maximum(squared, _EPSILON), 0.0)


def _without(vectors: tf.Tensor, direction: tf.Tensor) -> tf.Tensor:
    """[..., dim] vectors minus their projection on `direction` [..., dim] (0 stays 0)."""
    squared = tf.reduce_sum(tf.square(direction), axis=-1, keepdims=True)
    along = tf.reduce_sum(vectors * direction, axis=-1, keepdims=True) / tf.maximum(squared, _EPSILON)
    return vectors - tf.where(squared >= _EPSILON, along, 0.0) * direction


def own_directions(
    item: tf.Tensor, creator: tf.Tensor, category: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Each part made orthogonal to the coarser ones (Gram-Schmidt, category first): the
    creator part without its category's direction, the id without its creator's and category's.

    A creator's embedding learns its category's direction too (creators specialise), so
    subtracting it whole lowered the rest of the category with the creator (measured on the
    `--policy mix` world: -82% of the rest of the category after a creator dislike). What is
    left points at what is specific to the creator (or the item).
    """
    creator = _without(creator, category)
    item = _without(_without(item, category), creator)
    return item, creator, category


class NegativePath(tf.keras.layers.Layer):
    """Per-position penalty on the query from the negatives at or before it.

    Args:
      item_tower: the tower whose id / creator / category parts are subtracted.
      reason_granularity: [num_reason_tokens] int granularity code of each reason id.
      use_reasons: split explicit negatives by their reason's granularity (else all item-level).
      scale: effective coefficient = stored value * scale (see the module doc).
      decay: a negative's penalty on the query p events later is multiplied by decay ** p.
      skips: let skips act through the path too (False: explicit negatives only).
      parts: `free` (any kind may use any part) or `own` (see the module doc).
      units: `embedding` (subtract b * part) or `logit` (subtract b * part / |part|^2).
      trainable_strengths: train the coefficients with the model (False: they stay at 0 in
        training and are set afterwards, by `retrieval.reaction.fit_reaction`).

    Call: features (dict of [batch, seq_len] `item`, `label`, `reason`, `mask`) and the
    [batch, seq_len] bool of real events -> [batch, seq_len, dim] penalty, the sum over
    negatives at positions <= t of their weighted parts (subtract it from state t).
    """

    def __init__(
        self,
        item_tower: ItemTower,
        reason_granularity,
        use_reasons: bool,
        scale: float = 30.0,
        decay: float = 1.0,
        skips: bool = True,
        parts: str = "free",
        units: str = "embedding",
        trainable_strengths: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if parts not in PARTS or units not in UNITS:
            raise ValueError(
                f"parts must be one of {PARTS} and units one of {UNITS}; got {parts!r}, {units!r}."
            )
        self.parts = parts
        self.units = units
        self.allowed = tf.constant(OWN_PARTS if parts == "own" else [[1.0] * 3] * NUM_KINDS, tf.float32)
        trainable = bool(trainable_strengths)
        self.scale = float(scale)
        self.decay = float(decay)
        self.skips = bool(skips)
        self.item_tower = item_tower
        self.reason_granularity = tf.constant(reason_granularity, tf.int32)
        self.use_reasons = use_reasons
        self.coefficients = self.add_weight(
            name="coefficients", shape=[NUM_KINDS, 3], initializer="zeros", trainable=trainable
        )

    def kinds(self, features: dict[str, tf.Tensor], attend: tf.Tensor) -> tf.Tensor:
        """[batch, seq_len] int kind of each event, NUM_KINDS for events that are no negative."""
        label = tf.cast(features["label"], tf.int32)
        explicit = (label == int(Label.EXPLICIT_NEGATIVE)) & attend
        implicit = (label == int(Label.IMPLICIT_NEGATIVE)) & attend
        item_level = GRANULARITY_CODE[Granularity.ITEM]
        granularity = (
            tf.gather(self.reason_granularity, features["reason"]) if self.use_reasons else item_level
        )
        kind = tf.where(explicit, granularity + tf.zeros_like(label), NUM_KINDS)
        return tf.where(implicit & self.skips, SKIP_KIND, kind)

    def strengths(self) -> tf.Tensor:
        """[NUM_KINDS, 3] effective coefficients (stored value x scale, disallowed parts 0)."""
        return self.coefficients * self.scale * tf.cast(self.allowed, self.coefficients.dtype)

    def call(self, features: dict[str, tf.Tensor], attend: tf.Tensor) -> tf.Tensor:
        kind = self.kinds(features, attend)
        coefficients = self.strengths()
        table = tf.concat([coefficients, tf.zeros([1, 3], coefficients.dtype)], axis=0)
        weights = tf.gather(table, kind)  # [batch, seq_len, 3]
        item, creator, category = self.item_tower.parts(features["item"])
        if self.parts == "own":
            item, creator, category = own_directions(item, creator, category)
        if self.units == "logit":
            item, creator, category = (per_logit(v) for v in (item, creator, category))
        vectors = weights[..., 0:1] * item + weights[..., 1:2] * creator + weights[..., 2:3] * category
        if self.decay == 1.0:
            return tf.cumsum(vectors, axis=1)
        # [seq_len, seq_len] weights decay ** (p - s) for s <= p, 0 above the diagonal.
        position = tf.range(tf.shape(vectors)[1])
        gap = tf.cast(position[:, tf.newaxis] - position[tf.newaxis, :], vectors.dtype)
        weights = tf.where(gap >= 0, tf.pow(self.decay, tf.maximum(gap, 0.0)), 0.0)
        return tf.einsum("ps,bsd->bpd", weights, vectors)
