"""Export for serving: a SavedModel (history -> query embedding), item embeddings and ids.

models/<variant>/ gets saved_model/, item_embeddings.npy [num_items, dim], item_ids.txt (row i
of the embeddings is line i), items.jsonl (each item's catalogue row and train popularity, same
order) and, in config.json, `export` = {fingerprint, vocab_hash, dim, num_items}.
The fingerprint is a SHA-256 of the weights, so an index or service built from one export can refuse another.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from ntr.pipelines.atomic import replacing, write_json
from ntr.pipelines.encode import MISSING_INT
from ntr.pipelines.events import (
    ACTIONS,
    EXPLICIT_NEGATIVE_ACTIONS,
    IMPLICIT_NEGATIVE_ACTIONS,
    Label,
    LabelConfig,
)
from ntr.retrieval.data import NUM_RESERVED, load_items, load_vocab, lookup_table
from ntr.retrieval.items import positive_counts
from ntr.retrieval.model import NTRModel
from ntr.tfenv import tf

SIGNATURE = "serving_default"
ITEMS_FILE = "items.jsonl"
# Serving inputs: [batch, seq_len] per event, left-aligned, "" / -1 padded.
STRING_INPUTS = ("item_id", "action", "reason")
INT_INPUTS = ("timestamp", "watch_ms", "duration_ms")


class QueryModule(tf.Module):
    """The query tower with its string lookups, saved as one SavedModel."""

    def __init__(self, model: NTRModel, data_dir: str):
        super().__init__()
        self.model = model
        self.label_config = data_label_config(data_dir)
        self.tables = {
            "item_id": lookup_table(load_vocab(data_dir, "items")),
            "action": lookup_table(list(ACTIONS)),
            "reason": lookup_table(load_vocab(data_dir, "reasons")),
        }
        spec = {name: tf.TensorSpec([None, None], tf.string, name) for name in STRING_INPUTS}
        spec.update({name: tf.TensorSpec([None, None], tf.int64, name) for name in INT_INPUTS})
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, inputs):
        """History [batch, seq_len] -> {"query_embedding": [batch, dim]}."""
        mask = tf.not_equal(inputs["item_id"], "")
        action = tf.cast(self.tables["action"].lookup(inputs["action"]), tf.int32)
        action = apply_skip_rule(action, inputs["watch_ms"], inputs["duration_ms"], self.label_config)
        features = {
            "item": tf.cast(self.tables["item_id"].lookup(inputs["item_id"]), tf.int32),
            "action": action,
            "reason": tf.cast(self.tables["reason"].lookup(inputs["reason"]), tf.int32),
            "label": tf.where(mask, action_labels(action), -1),
            "timestamp": inputs["timestamp"],
            "watch_ms": inputs["watch_ms"],
            "duration_ms": inputs["duration_ms"],
            "mask": mask,
        }
        tf.debugging.assert_less_equal(
            tf.shape(mask)[1],
            self.model.config.model.max_len,
            message="history longer than the model's max_len",
        )
        return {"query_embedding": self.model.query_embedding(features)}


def _action_token(name: str) -> int:
    return ACTIONS.index(name) + NUM_RESERVED


def apply_skip_rule(
    action: tf.Tensor, watch_ms: tf.Tensor, duration_ms: tf.Tensor, config: LabelConfig
) -> tf.Tensor:
    """The pipeline's skip rule in the graph: a `view` watched too briefly becomes `skip`."""
    watch = tf.cast(watch_ms, tf.float32)
    duration = tf.cast(duration_ms, tf.float32)
    short = (watch < config.skip_ms) | (
        (duration > 0) & (watch / tf.maximum(duration, 1.0) < config.skip_ratio)
    )
    skip = (action == _action_token("view")) & (watch >= 0) & short
    return tf.where(skip, _action_token("skip"), action)


def action_labels(action: tf.Tensor) -> tf.Tensor:
    """`Label` per action token: explicit / implicit negatives, everything else POSITIVE.

    The query tower only needs to tell negatives from the rest, so views are not split into
    POSITIVE and NEUTRAL here.
    """
    values = [int(Label.NEUTRAL)] * NUM_RESERVED
    for name in ACTIONS:
        if name in EXPLICIT_NEGATIVE_ACTIONS:
            values.append(int(Label.EXPLICIT_NEGATIVE))
        elif name in IMPLICIT_NEGATIVE_ACTIONS:
            values.append(int(Label.IMPLICIT_NEGATIVE))
        else:
            values.append(int(Label.POSITIVE))
    return tf.gather(tf.constant(values, tf.int32), action)


def data_label_config(data_dir: str) -> LabelConfig:
    """The skip / positive rule the data directory was preprocessed with."""
    with open(os.path.join(data_dir, "config.json"), encoding="utf-8") as handle:
        return LabelConfig(**json.load(handle)["preprocess"]["label"])


def fingerprint(model: NTRModel) -> str:
    """SHA-256 over the model's variables (name, shape, bytes), in a fixed order."""
    digest = hashlib.sha256()
    for variable in sorted(model.variables, key=lambda v: v.name):
        digest.update(variable.name.encode())
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()


def export_model(model: NTRModel, data_dir: str, model_dir: str) -> dict:
    """Write saved_model/, item_embeddings.npy, item_ids.txt; add `export` to config.json."""
    module = QueryModule(model, data_dir)
    # Keras warns that the subclassed layers have no get_config; the SavedModel needs only the
    # traced signature, so those warnings say nothing useful here.
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")
    try:
        tf.saved_model.save(
            module, os.path.join(model_dir, "saved_model"), signatures={SIGNATURE: module.serve}
        )
    finally:
        logger.setLevel(level)
    embeddings = model.candidate_embeddings().numpy().astype(np.float32)
    with replacing(os.path.join(model_dir, "item_embeddings.npy"), "wb") as handle:
        np.save(handle, embeddings)
    items = load_vocab(data_dir, "items")
    with replacing(os.path.join(model_dir, "item_ids.txt")) as handle:
        handle.writelines(f"{item}\n" for item in items)
    # The catalogue rows in embedding order, so serving and the simulator need only this folder.
    # `positives` (train popularity) ranks items for a history the model can say nothing about.
    catalogue = {item["item_id"]: item for item in load_items(data_dir)}
    with replacing(os.path.join(model_dir, ITEMS_FILE)) as handle:
        for item, count in zip(items, positive_counts(data_dir, items), strict=True):
            row = catalogue.get(item, {"item_id": item, "creator_id": "", "categories": []})
            handle.write(json.dumps({**row, "positives": int(count)}, sort_keys=True) + "\n")
    config_path = os.path.join(model_dir, "config.json")
    with open(config_path, encoding="utf-8") as handle:
        metadata = json.load(handle)
    metadata["export"] = {
        "fingerprint": fingerprint(model),
        "vocab_hash": metadata["vocab_hash"],
        "dim": int(embeddings.shape[1]),
        "num_items": int(embeddings.shape[0]),
    }
    # Written last and whole: `export` in config.json says the folder is complete.
    write_json(config_path, metadata)
    return metadata["export"]


def histories_to_inputs(histories: list[list[dict]], max_len: int) -> dict[str, np.ndarray]:
    """Canonical event dicts per user -> the SavedModel's padded inputs (last max_len kept)."""
    batch = max(len(histories), 1)
    out = {name: np.full((batch, max_len), "", object) for name in STRING_INPUTS}
    out.update({name: np.full((batch, max_len), MISSING_INT, np.int64) for name in INT_INPUTS})
    out["timestamp"][:] = 0
    for i, events in enumerate(histories):
        for j, event in enumerate(events[-max_len:]):
            for name in STRING_INPUTS:
                out[name][i, j] = event.get(name) or ""
            for name in INT_INPUTS:
                value = event.get(name)
                out[name][i, j] = MISSING_INT if value is None else int(value)
    return out
