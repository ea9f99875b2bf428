"""tf.data readers for the pipeline's TFRecords (schema in `ntr.pipelines.encode`).

Token ids, one convention for every vocabulary: 0 = padding (and "no reason"), 1 = out of
vocabulary, and the token on line i (0-based) of `vocab/<name>.txt` gets id i + 2.
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np

from ntr.pipelines.encode import (
    BYTES_FEATURES,
    FLOAT_FEATURES,
    INT_FEATURES,
    LOGGING_INT_FEATURES,
    MISSING_INT,
)
from ntr.pipelines.events import Label
from ntr.tfenv import tf

PAD_ID = 0
OOV_ID = 1
NUM_RESERVED = 2


def load_vocab(data_dir: str, name: str) -> list[str]:
    """The tokens of `data_dir/vocab/<name>.txt`, in id order (id = index + NUM_RESERVED)."""
    path = os.path.join(data_dir, "vocab", f"{name}.txt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: run `ntr preprocess` to build {data_dir}.")
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.rstrip("\n")]


def lookup_table(tokens: list[str]) -> tf.lookup.StaticHashTable:
    """String -> id table with the module's convention; "" maps to PAD_ID."""
    keys = tf.constant([""] + tokens)
    values = tf.constant([PAD_ID] + list(range(NUM_RESERVED, NUM_RESERVED + len(tokens))), tf.int64)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), OOV_ID)


_SEQUENCE_SPEC = {
    **{name: tf.io.FixedLenSequenceFeature([], tf.string) for name in BYTES_FEATURES},
    **{name: tf.io.FixedLenSequenceFeature([], tf.int64) for name in INT_FEATURES},
}
# Read by the evaluation only; files written before these columns existed read as unknown.
_LOGGING_SPEC = {
    **{
        name: tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True) for name in LOGGING_INT_FEATURES
    },
    **{name: tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True) for name in FLOAT_FEATURES},
}
# Fingerprint buckets of the window sample: fine enough that a share is kept to 1e-6.
_SHARE_BUCKETS = 1_000_000

_CONTEXT_SPEC = {
    "user_id": tf.io.FixedLenFeature([], tf.string),
    "split": tf.io.FixedLenFeature([], tf.string),
}
# Padding values per output feature; `label` pads with -1 so padding is never a NEUTRAL event.
_PAD_VALUES = {
    "item": PAD_ID,
    "action": PAD_ID,
    "reason": PAD_ID,
    "label": -1,
    "timestamp": 0,
    "watch_ms": MISSING_INT,
    "duration_ms": MISSING_INT,
    "is_target": 0,
}


def split_files(data_dir: str, split: str) -> list[str]:
    """The sorted TFRecord shards of one split, with an error naming what to run if none."""
    files = sorted(glob.glob(os.path.join(data_dir, f"{split}-*.tfrecord.gz")))
    if not files:
        raise FileNotFoundError(
            f"No {split}-*.tfrecord.gz in {data_dir}: run `ntr preprocess --workdir ...` first."
        )
    return files


def sequence_dataset(
    data_dir: str,
    split: str,
    batch_size: int,
    max_len: int,
    shuffle: bool = False,
    seed: int = 0,
    keep_strings: bool = False,
    logging: bool = False,
    share: float = 1.0,
) -> tf.data.Dataset:
    """Padded batches of sequence windows.

    Args:
      data_dir: WORKDIR/data.
      split: `train`, `valid` or `test`.
      batch_size: windows per batch (the last batch may be smaller).
      max_len: padded length; must be >= the pipeline's max_len (longer windows are an error).
      shuffle: shuffle windows (with `seed`) before batching.
      seed: shuffle seed.
      keep_strings: also return `item_id`, `action_name`, `reason_name` strings.
      logging: also return the logging columns, `is_random` [batch, max_len] int32 (-1
        unknown) and `propensity` [batch, max_len] float32 (-1 unknown); files written
        before they existed read as unknown.
      share: keep only this share of the windows, chosen by a fingerprint of the user id
        (FarmHash, not Python's `hash()`): the same windows in every epoch, run and process,
        and independent of file order. 1.0 keeps all (see `window_share`).

    Returns:
      A dataset of dicts: `user_id` [batch] string; `item`, `action`, `reason`, `label`,
      `is_target` [batch, max_len] int32; `timestamp`, `watch_ms`, `duration_ms`
      [batch, max_len] int64; `mask` [batch, max_len] bool (True on real events). Events are
      left-aligned and in time order.
    """
    tables = {name: lookup_table(load_vocab(data_dir, name)) for name in ("items", "actions", "reasons")}

    def parse(record):
        spec = {**_SEQUENCE_SPEC, **_LOGGING_SPEC} if logging else _SEQUENCE_SPEC
        context, lists = tf.io.parse_single_sequence_example(
            record, context_features=_CONTEXT_SPEC, sequence_features=spec
        )
        length = tf.shape(lists["item_id"])[0]
        tf.debugging.assert_less_equal(
            length, max_len, message="window longer than max_len: pass the pipeline's max_len"
        )
        out = {
            "user_id": context["user_id"],
            "item": tf.cast(tables["items"].lookup(lists["item_id"]), tf.int32),
            "action": tf.cast(tables["actions"].lookup(lists["action"]), tf.int32),
            "reason": tf.cast(tables["reasons"].lookup(lists["reason"]), tf.int32),
            "label": tf.cast(lists["label"], tf.int32),
            "is_target": tf.cast(lists["is_target"], tf.int32),
            "timestamp": lists["timestamp"],
            "watch_ms": lists["watch_ms"],
            "duration_ms": lists["duration_ms"],
        }
        if keep_strings:
            out.update(item_id=lists["item_id"], action_name=lists["action"], reason_name=lists["reason"])
        if logging:
            for name, dtype in (("is_random", tf.int32), ("propensity", tf.float32)):
                value = tf.cast(lists[name], dtype)
                out[name] = tf.cond(
                    tf.shape(value)[0] == length,
                    lambda v=value: v,
                    lambda d=dtype: tf.fill([length], tf.cast(-1, d)),
                )
        return out

    dataset = tf.data.TFRecordDataset(split_files(data_dir, split), compression_type="GZIP")
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}.")
    if share < 1.0:
        kept = int(share * _SHARE_BUCKETS)
        dataset = dataset.filter(
            lambda w: tf.strings.to_hash_bucket_fast(w["user_id"], _SHARE_BUCKETS) < kept
        )
    shapes = {name: [max_len] for name in _PAD_VALUES}
    pads = {
        name: tf.constant(v, tf.int64 if name in ("timestamp", "watch_ms", "duration_ms") else tf.int32)
        for name, v in _PAD_VALUES.items()
    }
    shapes["user_id"], pads["user_id"] = [], tf.constant("")
    if keep_strings:
        for name in ("item_id", "action_name", "reason_name"):
            shapes[name], pads[name] = [max_len], tf.constant("")
    if logging:
        shapes["is_random"], pads["is_random"] = [max_len], tf.constant(-1, tf.int32)
        shapes["propensity"], pads["propensity"] = [max_len], tf.constant(-1.0, tf.float32)
    dataset = dataset.padded_batch(batch_size, padded_shapes=shapes, padding_values=pads)
    dataset = dataset.map(lambda b: dict(b, mask=b["label"] >= 0))
    return dataset.prefetch(tf.data.AUTOTUNE)


def window_share(data_dir: str, split: str, max_windows: int) -> tuple[float, int]:
    """The `share` of `sequence_dataset` that keeps about `max_windows` of `split`'s windows.

    Args:
      data_dir: WORKDIR/data (its stats.json counts the windows per split).
      split: `train`, `valid` or `test`.
      max_windows: the cap; 0 keeps every window.

    Returns:
      (share, windows in the split): share 1.0 when the split has at most `max_windows`.
    """
    if max_windows < 0:
        raise ValueError(f"max_windows must be >= 0 (0: every window), got {max_windows}.")
    with open(os.path.join(data_dir, "stats.json"), encoding="utf-8") as handle:
        rows = int(json.load(handle)["splits"].get(split, 0))
    if max_windows == 0 or rows <= max_windows:
        return 1.0, rows
    return max_windows / rows, rows


def load_items(data_dir: str) -> list[dict]:
    """The item table (items.tfrecord.gz) as canonical item dicts, in file order."""
    spec = {
        "item_id": tf.io.FixedLenFeature([], tf.string),
        "creator_id": tf.io.FixedLenFeature([], tf.string),
        "categories": tf.io.VarLenFeature(tf.string),
        "duration_ms": tf.io.FixedLenFeature([], tf.int64),
        "text": tf.io.FixedLenFeature([], tf.string),
    }
    path = os.path.join(data_dir, "items.tfrecord.gz")
    items = []
    for record in tf.data.TFRecordDataset([path], compression_type="GZIP"):
        parsed = tf.io.parse_single_example(record, spec)
        duration = int(parsed["duration_ms"])
        items.append(
            {
                "item_id": parsed["item_id"].numpy().decode(),
                "creator_id": parsed["creator_id"].numpy().decode(),
                "categories": [c.decode() for c in parsed["categories"].values.numpy()],
                "duration_ms": None if duration == MISSING_INT else duration,
                "text": parsed["text"].numpy().decode(),
            }
        )
    return items


def read_histories(
    data_dir: str, split: str, limit: int | None = None, targets: bool = False, logging: bool = False
) -> list[list[dict]]:
    """The windows of a split as canonical event histories (what serving receives), file order.

    Args:
      data_dir: WORKDIR/data.
      split: `train`, `valid` or `test`.
      limit: stop after this many windows (None: all).
      logging: also give each event `is_random` and `propensity` (None when unknown); off
        by default, since these histories go to the service, whose events have no such fields.
      targets: also give each event `is_target` (True where the window evaluates it) and its
        `label` (a Label name).

    Returns:
      Per window, event dicts (item_id, timestamp, action, watch_ms, duration_ms, reason),
      oldest first; missing numbers and reasons are None.
    """
    histories = []
    for record in tf.data.TFRecordDataset(split_files(data_dir, split), compression_type="GZIP"):
        if limit is not None and len(histories) >= limit:
            break
        spec = {**_SEQUENCE_SPEC, **_LOGGING_SPEC} if logging else _SEQUENCE_SPEC
        _, lists = tf.io.parse_single_sequence_example(
            record, context_features=_CONTEXT_SPEC, sequence_features=spec
        )
        columns = {name: value.numpy() for name, value in lists.items()}
        n = len(columns["item_id"])
        if logging:  # files written before these columns existed have empty lists: unknown
            is_random = columns["is_random"] if len(columns["is_random"]) == n else np.full(n, MISSING_INT)
            propensity = columns["propensity"] if len(columns["propensity"]) == n else np.full(n, -1.0)
        events = []
        for j in range(n):
            event = {name: columns[name][j].decode() or None for name in ("item_id", "action", "reason")}
            for name in ("timestamp", "watch_ms", "duration_ms"):
                value = int(columns[name][j])
                event[name] = None if value == MISSING_INT and name != "timestamp" else value
            if logging:
                event["is_random"] = None if is_random[j] == MISSING_INT else bool(is_random[j])
                event["propensity"] = None if propensity[j] < 0 else float(propensity[j])
            if targets:
                event["is_target"] = bool(columns["is_target"][j])
                event["label"] = Label(int(columns["label"][j])).name
            events.append(event)
        histories.append(events)
    return histories
