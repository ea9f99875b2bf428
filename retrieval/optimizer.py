"""The training optimizer: Adam, or Adam that leaves the embedding rows a batch did not touch.

Keras's Adam, given a sparse gradient (the rows of an embedding table a batch looked up),
still decays the momentum of *every* row and moves every row by it, each step. Under a
sampled softmax most item rows get a gradient only now and then (as a sampled negative);
between two, Adam keeps moving them along their last gradient's sign by about ten times the
learning rate in all (sum over k of 0.9^k of an update normalised by a tiny second moment), so
a rare item's embedding is pushed far by a single sampled-negative gradient. `LazyAdam` updates
only the rows in the gradient (as TensorFlow Addons' LazyAdam did): a row's moments advance
when it is used. With a full softmax every row has a gradient every step and the two agree.
"""

from __future__ import annotations

from ntr.retrieval.config import OPTIMIZERS
from ntr.tfenv import tf  # sets TF_USE_LEGACY_KERAS (TFRS needs it) before TensorFlow loads


class LazyAdam(tf.keras.optimizers.Adam):
    """Adam whose sparse updates touch only the rows in the gradient.

    Dense gradients are updated as by `tf.keras.optimizers.Adam`. For a sparse gradient
    (`tf.IndexedSlices` with values `[rows, dim]`, deduplicated by `apply_gradients`), only
    those rows' first and second moments and values change; the bias correction uses the
    global step, as Adam's does.
    """

    def __init__(self, learning_rate: float = 1e-3, **kwargs):
        if kwargs.get("amsgrad"):
            raise ValueError("LazyAdam does not support amsgrad; use train.optimizer=adam for it.")
        super().__init__(learning_rate, **kwargs)

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = tf.cast(self.learning_rate, dtype) * tf.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        key = self._var_key(variable)
        m = self._momentums[self._index_dict[key]]
        v = self._velocities[self._index_dict[key]]
        rows, values = gradient.indices, gradient.values
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values  # [rows, dim]
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        epsilon = self.epsilon * tf.sqrt(1 - beta_2**step) if self.adaptive_epsilon else self.epsilon
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + epsilon), rows))
        return None


def resolve_optimizer(name: str, sparse_rows: bool) -> str:
    """The optimizer `train.optimizer` stands for: `auto` is `lazy_adam` where the item rows get
    sparse gradients (`sparse_rows`: a sampled softmax), else `adam`."""
    if name not in OPTIMIZERS:
        raise ValueError(f"train.optimizer must be one of {OPTIMIZERS}, got {name!r}.")
    if name == "auto":
        return "lazy_adam" if sparse_rows else "adam"
    return name


def make_optimizer(name: str, learning_rate: float, sparse_rows: bool) -> tf.keras.optimizers.Optimizer:
    """The optimizer `train.optimizer` names (see `resolve_optimizer`)."""
    if resolve_optimizer(name, sparse_rows) == "lazy_adam":
        return LazyAdam(learning_rate)
    return tf.keras.optimizers.Adam(learning_rate)
