"""Query tower (pre-LN causal Transformer over event tokens) and item tower."""

from __future__ import annotations

from ntr.retrieval.features import initializer
from ntr.tfenv import tf


class TransformerBlock(tf.keras.layers.Layer):
    """Pre-LN block: x + Drop(MHA(LN(x))), then x + Drop(FFN(LN(x))).

    Pre-LN keeps gradients well scaled without a warm-up schedule (Xiong et al., 2020).
    """

    def __init__(
        self, dim: int, num_heads: int, ff_dim: int, dropout: float, seed: int, index: int, **kwargs
    ):
        super().__init__(**kwargs)
        base = 100 * (index + 1)
        self.norm_attention = tf.keras.layers.LayerNormalization(epsilon=1e-6)
        self.attention = tf.keras.layers.MultiHeadAttention(
            num_heads, dim // num_heads, kernel_initializer=initializer(seed, base + 1)
        )
        self.norm_ff = tf.keras.layers.LayerNormalization(epsilon=1e-6)
        self.ff_in = tf.keras.layers.Dense(
            ff_dim, activation="gelu", kernel_initializer=initializer(seed, base + 2)
        )
        self.ff_out = tf.keras.layers.Dense(dim, kernel_initializer=initializer(seed, base + 3))
        self.drop_attention = tf.keras.layers.Dropout(dropout, seed=int(seed) * 1009 + base + 4)
        self.drop_ff = tf.keras.layers.Dropout(dropout, seed=int(seed) * 1009 + base + 5)

    def call(self, x: tf.Tensor, attention_mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        """x: [batch, seq_len, dim]; attention_mask: [batch, seq_len, seq_len] bool."""
        h = self.norm_attention(x)
        h = self.attention(h, h, attention_mask=attention_mask, training=training)
        x = x + self.drop_attention(h, training=training)
        h = self.ff_out(self.ff_in(self.norm_ff(x)))
        return x + self.drop_ff(h, training=training)


class CausalTransformer(tf.keras.layers.Layer):
    """Stack of pre-LN blocks with a causal mask; one state per position.

    Call: tokens [batch, seq_len, dim], attend [batch, seq_len] bool (events that may be
    attended to: real events, minus negatives when they are hidden) -> states
    [batch, seq_len, dim]. State t summarises the attendable events at positions <= t.
    """

    def __init__(
        self, dim: int, num_blocks: int, num_heads: int, ff_dim: int, dropout: float, seed: int, **kwargs
    ):
        super().__init__(**kwargs)
        self.blocks = [TransformerBlock(dim, num_heads, ff_dim, dropout, seed, i) for i in range(num_blocks)]
        self.final_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6)

    def call(self, tokens: tf.Tensor, attend: tf.Tensor, training: bool = False) -> tf.Tensor:
        length = tf.shape(tokens)[1]
        causal = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
        mask = causal[tf.newaxis] & attend[:, tf.newaxis, :]
        x = tokens
        for block in self.blocks:
            x = block(x, mask, training=training)
        return self.final_norm(x)


class ItemTower(tf.keras.layers.Layer):
    """Item id embedding (+ creator + mean category embeddings) -> candidate embedding.

    Args:
      item_embedding: the item `Embedding` (tied with the query tower's input by default).
      item_creator: [num_item_tokens] int creator token per item token.
      item_categories: [num_item_tokens, max_categories] int category tokens, 0 padded.
      num_creators / num_categories: token counts incl. reserved ids.
      dim: width.
      use_features: add creator and category embeddings (False: id only).
      seed: initialisation seed.
      creator_embedding / category_embedding: layers to share with another tower (new ones
        when None).

    Call: item tokens [...] int -> [..., dim].
    """

    def __init__(
        self,
        item_embedding: tf.keras.layers.Embedding,
        item_creator,
        item_categories,
        num_creators: int,
        num_categories: int,
        dim: int,
        use_features: bool = True,
        seed: int = 0,
        creator_embedding: tf.keras.layers.Embedding | None = None,
        category_embedding: tf.keras.layers.Embedding | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.item_embedding = item_embedding
        self.use_features = use_features
        self.item_creator = tf.constant(item_creator, tf.int32)
        self.item_categories = tf.constant(item_categories, tf.int32)
        self.creator_embedding = creator_embedding or tf.keras.layers.Embedding(
            num_creators, dim, embeddings_initializer=initializer(seed, 11)
        )
        self.category_embedding = category_embedding or tf.keras.layers.Embedding(
            num_categories, dim, embeddings_initializer=initializer(seed, 12)
        )

    def parts(self, items: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(id, creator, mean category) embeddings of item tokens [...], each [..., dim]; the
        last two are zero without features (and where the item has none)."""
        out = self.item_embedding(items)
        if not self.use_features:
            return out, tf.zeros_like(out), tf.zeros_like(out)
        categories = tf.gather(self.item_categories, items)  # [..., max_categories]
        present = tf.cast(categories > 0, out.dtype)[..., tf.newaxis]
        category_mean = tf.reduce_sum(self.category_embedding(categories) * present, axis=-2) / tf.maximum(
            tf.reduce_sum(present, axis=-2), 1.0
        )
        creator = tf.gather(self.item_creator, items)
        creator_emb = self.creator_embedding(creator) * tf.cast(creator > 0, out.dtype)[..., tf.newaxis]
        return out, creator_emb, category_mean

    def call(self, items: tf.Tensor) -> tf.Tensor:
        item, creator, category = self.parts(items)
        return item + creator + category
