"""Sinks: every file of WORKDIR/data the pipeline writes, one composite PTransform each."""

from __future__ import annotations

import collections
import json
import os
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from ntr.pipelines.encode import encode_item, encode_window

GZIP = beam.io.filesystem.CompressionTypes.GZIP
STATS_PART = "_stats_part"
CUTS_PART = "_cuts"


def write_whole_file(path: str, text: str) -> str:
    """Writes `text` to `path` (any Beam filesystem) through a temporary name, so a reader
    never sees half a file and a retried step overwrites with the same content; returns path."""
    temp = f"{path}.tmp-{uuid.uuid4().hex}"  # unique across the workers that may retry it
    with FileSystems.create(temp) as handle:
        handle.write(text.encode("utf-8"))
    FileSystems.rename([temp], [path])
    return path


class WriteWindows(beam.PTransform):
    """Windows of one split -> `<out>/<split>-SSSSS-of-NNNNN.tfrecord.gz` SequenceExamples."""

    def __init__(self, out: str, split: str, num_shards: int, label=None):
        super().__init__(label)
        self._prefix, self._num_shards = os.path.join(out, split), num_shards

    def expand(self, windows):
        return (
            windows
            | "Encode" >> beam.Map(encode_window)
            | "Write"
            >> beam.io.WriteToTFRecord(
                self._prefix,
                file_name_suffix=".tfrecord.gz",
                num_shards=self._num_shards,
                compression_type=GZIP,
            )
        )


class WriteItems(beam.PTransform):
    """Item lists -> `items.tfrecord.gz`; the catalogue (`CatalogueFn`) -> the item / creator /
    category vocabularies."""

    def __init__(self, out: str, catalogue, label=None):
        super().__init__(label)
        self._out, self._catalogue = out, catalogue

    def expand(self, item_lists):
        vocab = os.path.join(self._out, "vocab")
        _ = self._catalogue | "WriteVocabs" >> beam.Map(
            lambda c: [
                write_whole_file(f"{vocab}/{n}.txt", "".join(f"{x}\n" for x in c[n])) for n in sorted(c)
            ]
        )
        return (
            item_lists
            | "Encode" >> beam.FlatMap(lambda items: [encode_item(i) for i in items])
            | "Write"
            >> beam.io.WriteToTFRecord(
                os.path.join(self._out, "items"),
                file_name_suffix=".tfrecord.gz",
                shard_name_template="",
                compression_type=GZIP,
            )
        )


class WriteItemCounts(beam.PTransform):
    """Counters of positive train targets per item, and the catalogue -> `item_counts.tsv`,
    every item listed (0 too)."""

    def __init__(self, out: str, catalogue, label=None):
        super().__init__(label)
        self._path, self._catalogue = os.path.join(out, "item_counts.tsv"), catalogue

    def expand(self, counters):
        path = self._path
        totals = beam.pvalue.AsSingleton(counters | "Sum" >> beam.CombineGlobally(CountersSum()))

        def write(catalogue, counts):
            unknown = set(counts) - set(catalogue["items"])
            if unknown:  # every event's item is in the catalogue; a miss would be a bug
                raise RuntimeError(f"item counts for items not in the catalogue: {sorted(unknown)[:5]}")
            lines = sorted(f"{i}\t{counts.get(i, 0)}" for i in catalogue["items"])
            return write_whole_file(path, "".join(f"{line}\n" for line in lines))

        return self._catalogue | "Write" >> beam.Map(write, totals)


def dead_letter_line(record: dict) -> str:
    """One dead letter as its JSONL line (keys sorted; values JSON cannot hold as text)."""
    return json.dumps(record, sort_keys=True, default=str)


class WriteDeadLetters(beam.PTransform):
    """Dead-letter records -> `dead_letter-*.jsonl`."""

    def __init__(self, out: str, label=None):
        super().__init__(label)
        self._prefix = os.path.join(out, "dead_letter")

    def expand(self, dead):
        return (
            dead
            | "ToJson" >> beam.Map(dead_letter_line)
            | "Write" >> beam.io.WriteToText(self._prefix, file_name_suffix=".jsonl")
        )


class CountersSum(beam.CombineFn):
    """Sums `collections.Counter`s (the per-user and per-stage stats)."""

    def create_accumulator(self):
        return collections.Counter()

    def add_input(self, acc, counter):
        acc.update(counter)
        return acc

    def merge_accumulators(self, accs):
        total = collections.Counter()
        for acc in accs:
            total.update(acc)
        return total

    def extract_output(self, acc):
        return dict(acc)


class WriteJson(beam.PTransform):
    """A singleton PCollection -> `<out>/<name>.json` (parts the driver folds into stats.json)."""

    def __init__(self, out: str, name: str, label=None):
        super().__init__(label)
        self._path = os.path.join(out, f"{name}.json")

    def expand(self, value):
        path = self._path
        return value | "Write" >> beam.Map(lambda v: write_whole_file(path, json.dumps(v)))


class WriteStats(beam.PTransform):
    """Counters -> their sum as the stats part file."""

    def __init__(self, out: str, label=None):
        super().__init__(label)
        self._out = out

    def expand(self, parts):
        return (
            parts | "Sum" >> beam.CombineGlobally(CountersSum()) | "Write" >> WriteJson(self._out, STATS_PART)
        )
