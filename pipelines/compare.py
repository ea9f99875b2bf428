"""Two `ntr preprocess` outputs compared record by record, whatever runner wrote them.

Runners order records differently, and a proto's map fields (an Example's features) serialise
in any order, so outputs are compared as sorted records: TFRecords re-serialised
deterministically, text files line by line, stats.json without its timings.
"""

from __future__ import annotations

import glob
import gzip
import json
import os

TIMING_FIELDS = frozenset({"seconds", "events_per_second"})


def canonical_outputs(directory: str) -> dict[str, object]:
    """{file name relative to `directory`: its records, order-free} for every output file
    (config.json, which records the runner flags, is left out)."""
    from ntr.tfenv import tf  # noqa: PLC0415 (TensorFlow only when TFRecords are compared)

    out = {}
    for path in sorted(glob.glob(os.path.join(directory, "**", "*"), recursive=True)):
        name = os.path.relpath(path, directory)
        if os.path.isdir(path) or name == "config.json":
            continue
        if ".tfrecord" in name:
            proto = tf.train.Example if name.startswith("items") else tf.train.SequenceExample
            records = tf.data.TFRecordDataset(path, compression_type="GZIP")
            out[name] = sorted(
                proto.FromString(r.numpy()).SerializeToString(deterministic=True) for r in records
            )
        elif name == "stats.json":
            with open(path, encoding="utf-8") as handle:
                out[name] = {k: v for k, v in json.load(handle).items() if k not in TIMING_FIELDS}
        else:
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as handle:
                out[name] = sorted(handle.read().splitlines())
    return out


def differences(a: str, b: str) -> list[str]:
    """Names of the output files that differ between folders `a` and `b` (missing on one side included)."""
    left, right = canonical_outputs(a), canonical_outputs(b)
    return sorted(name for name in set(left) | set(right) if left.get(name) != right.get(name))
