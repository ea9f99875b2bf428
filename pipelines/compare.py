"""Two `ntr preprocess` outputs compared record by record, whatever runner wrote them.

Runners order records differently, cut an output into different numbers of shards, and a
proto's map fields (an Example's features) serialise in any order, so outputs are compared as
sorted records per output with its shards merged: TFRecords re-serialised deterministically,
text files line by line, stats.json without its timings.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re

TIMING_FIELDS = frozenset({"seconds", "events_per_second"})
SHARD = re.compile(r"-\d{5}-of-\d{5}")


def canonical_outputs(directory: str) -> dict[str, object]:
    """{output name relative to `directory` (shard numbers removed): its records, order-free}
    for every output (config.json, which records the runner flags, is left out)."""
    from ntr.tfenv import tf  # noqa: PLC0415 (TensorFlow only when TFRecords are compared)

    out = {}
    for path in sorted(glob.glob(os.path.join(directory, "**", "*"), recursive=True)):
        name = SHARD.sub("", os.path.relpath(path, directory))
        if os.path.isdir(path) or name == "config.json":
            continue
        if name == "stats.json":
            with open(path, encoding="utf-8") as handle:
                out[name] = {k: v for k, v in json.load(handle).items() if k not in TIMING_FIELDS}
        elif ".tfrecord" in name:
            proto = tf.train.Example if name.startswith("items") else tf.train.SequenceExample
            records = tf.data.TFRecordDataset(path, compression_type="GZIP")
            out.setdefault(name, []).extend(
                proto.FromString(r.numpy()).SerializeToString(deterministic=True) for r in records
            )
        else:
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as handle:
                out.setdefault(name, []).extend(handle.read().splitlines())
    return {name: sorted(v) if isinstance(v, list) else v for name, v in out.items()}


def differences(a: str, b: str) -> list[str]:
    """Names of the output files that differ between folders `a` and `b` (missing on one side included)."""
    left, right = canonical_outputs(a), canonical_outputs(b)
    return sorted(name for name in set(left) | set(right) if left.get(name) != right.get(name))
