"""TFRecord encodings: sequence windows as `tf.train.SequenceExample`, items as `tf.train.Example`.

The schema, shared with the tf.data reader (`ntr.retrieval.data`):

SequenceExample context: `user_id` (bytes), `split` (bytes).
SequenceExample feature lists, one entry per event, time-ordered:
  `item_id`, `action`, `reason` (bytes; reason "" when none),
  `label` (int64, `Label` value), `timestamp` (int64, unix s),
  `watch_ms`, `duration_ms` (int64, -1 when unknown), `is_target` (int64, 0/1),
  `is_random` (int64, 0/1, -1 when unknown), `propensity` (float, -1 when unknown).
Item Example: `item_id`, `creator_id` (bytes), `categories` (bytes list), `duration_ms`
  (int64, -1 when unknown), `text` (bytes).
"""

from __future__ import annotations

from ntr.pipelines.events import Label
from ntr.tfenv import tf

MISSING_INT = -1
BYTES_FEATURES = ("item_id", "action", "reason")
INT_FEATURES = ("label", "timestamp", "watch_ms", "duration_ms", "is_target")
# The logging columns (only the evaluation reads them).
LOGGING_INT_FEATURES = ("is_random",)
FLOAT_FEATURES = ("propensity",)
MISSING_FLOAT = -1.0


def _bytes(values) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _int_or_missing(value: int | None) -> int:
    return MISSING_INT if value is None else value


def encode_window(window: dict) -> bytes:
    """A window from `build_user_sequences` -> serialized SequenceExample."""
    events = window["events"]
    columns = {
        "item_id": [e["item_id"] for e in events],
        "action": [e["action"] for e in events],
        "reason": [e["reason"] or "" for e in events],
        "label": [Label[e["label"]].value for e in events],
        "timestamp": [e["timestamp"] for e in events],
        "watch_ms": [_int_or_missing(e["watch_ms"]) for e in events],
        "duration_ms": [_int_or_missing(e["duration_ms"]) for e in events],
        "is_target": window["is_target"],
        "is_random": [
            _int_or_missing(None if e.get("is_random") is None else int(e["is_random"])) for e in events
        ],
        "propensity": [MISSING_FLOAT if e.get("propensity") is None else e["propensity"] for e in events],
    }
    feature_lists = {}
    for name, values in columns.items():
        make = _bytes if name in BYTES_FEATURES else _floats if name in FLOAT_FEATURES else _ints
        feature_lists[name] = tf.train.FeatureList(feature=[make([v]) for v in values])
    example = tf.train.SequenceExample(
        context=tf.train.Features(
            feature={"user_id": _bytes([window["user_id"]]), "split": _bytes([window["split"]])}
        ),
        feature_lists=tf.train.FeatureLists(feature_list=feature_lists),
    )
    return example.SerializeToString()


def encode_item(item: dict) -> bytes:
    """A canonical item dict -> serialized Example."""
    feature = {
        "item_id": _bytes([item["item_id"]]),
        "creator_id": _bytes([item["creator_id"]]),
        "categories": _bytes(item["categories"]),
        "duration_ms": _ints([_int_or_missing(item["duration_ms"])]),
        "text": _bytes([item["text"]]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
