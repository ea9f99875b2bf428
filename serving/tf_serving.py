"""A SavedModel with the index inside, for TF Serving users: history -> top-k item ids.

The query tower's SavedModel is wrapped with a TFRS `ScaNN` layer holding the item
embeddings; its signature takes the same inputs as the query tower (see retrieval/export.py)
and returns `item_ids` [batch, k] string, `scores` [batch, k] and `query_embedding`
[batch, dim]. ScaNN ops live in the "Scann" namespace, which must be allowed when saving;
loading needs them registered (`import scann` or `from scann.scann_ops.py import scann_ops`).
"""

from __future__ import annotations

import math
import os

import numpy as np

from ntr.retrieval.export import SIGNATURE
from ntr.retrieval.exported import ExportedModel
from ntr.serving.index import recall_at_k
from ntr.serving.topk import BruteForce
from ntr.tfenv import tf


class _IndexedQueryModule(tf.Module):
    def __init__(self, model: ExportedModel, k: int, num_leaves: int, leaves_to_search: int, reorder: int):
        import tensorflow_recommenders as tfrs  # noqa: PLC0415

        super().__init__()
        self.query = tf.saved_model.load(os.path.join(model.model_dir, "saved_model"))
        self.scann = tfrs.layers.factorized_top_k.ScaNN(
            k=k,
            distance_measure="dot_product",
            num_leaves=num_leaves,
            num_leaves_to_search=leaves_to_search,
            num_reordering_candidates=reorder,
        )
        self.scann.index(tf.constant(model.embeddings), tf.constant(model.item_ids))
        signature = self.query.signatures[SIGNATURE]
        self.signature = signature

        @tf.function(input_signature=list(signature.structured_input_signature[1:]))
        def serve(inputs):
            query = self.signature(**inputs)["query_embedding"]
            scores, item_ids = self.scann(query)
            return {"item_ids": item_ids, "scores": scores, "query_embedding": query}

        self.serve = serve


def export_with_index(
    model: ExportedModel, output_dir: str, queries: np.ndarray, k: int = 100, recall_k: int = 10
) -> dict:
    """Writes the SavedModel to `output_dir` and measures its recall against brute force.

    Args:
      model: the exported model whose embeddings go into the index.
      output_dir: where the SavedModel goes.
      queries: [num_queries, dim] held-out queries for the recall measurement.
      k: how many items the signature returns.
      recall_k: the K of the reported recall@K.

    Returns:
      What goes into the index manifest under `tf_serving`: path, k, tree settings, recall.
    """
    num_items = len(model.item_ids)
    k = min(k, num_items)
    recall_k = min(recall_k, k)
    num_leaves = max(1, int(round(math.sqrt(num_items))))
    # Small catalogues: probe every leaf (the layer always builds a tree); larger ones a fifth.
    leaves_to_search = num_leaves if num_items < 20_000 else max(1, num_leaves // 5)
    reorder = min(num_items, max(4 * k, 100))
    module = _IndexedQueryModule(model, k, num_leaves, leaves_to_search, reorder)
    found = module.scann(tf.constant(queries, tf.float32))[1].numpy()[:, :recall_k]
    rows = np.array([[model.item_index[i.decode()] for i in row] for row in found])
    exact = BruteForce(model.embeddings).search(queries, recall_k)[1]
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # Keras' get_config warnings say nothing about a traced signature
    try:
        tf.saved_model.save(
            module,
            output_dir,
            signatures={SIGNATURE: module.serve},
            options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]),
        )
    finally:
        logger.setLevel(level)
    return {
        "path": os.path.basename(os.path.normpath(output_dir)),
        "k": k,
        "num_leaves": num_leaves,
        "leaves_to_search": leaves_to_search,
        "reorder": reorder,
        "recall": {"k": recall_k, "measured": recall_at_k(rows, exact), "num_queries": len(queries)},
    }
