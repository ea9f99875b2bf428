"""Sinks: every file of WORKDIR/data the pipeline writes, one composite PTransform each."""

from __future__ import annotations

import collections
import json
import os

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from ntr.pipelines.encode import encode_item, encode_window

GZIP = beam.io.filesystem.CompressionTypes.GZIP
STATS_PART = "_stats_part"
CUTS_PART = "_cuts"


def write_whole_file(path: str, text: str) -> str:
    """Writes `text` to `path` (any Beam filesystem) through a temporary name, so a reader
    never sees half a file and a retried step overwrites with the same content; returns path."""
    temp = f"{path}.tmp-{os.getpid()}"
    with FileSystems.create(temp) as handle:
        handle.write(text.encode("utf-8"))
    FileSystems.rename([temp], [path])
    return path


class WriteSortedLines(beam.PTransform):
    """Strings -> one file with them sorted, one per line (vocabularies, item counts).

    A small output written whole by one step: Beam's sharded file sink would add a dozen steps
    to the pipeline for one file, and their set-up is most of a small run's time.
    """

    def __init__(self, path: str, label=None):
        super().__init__(label)
        self._path = path

    def expand(self, lines):
        path = self._path
        return (
            lines
            | "Collect" >> beam.combiners.ToList()
            | "Write"
            >> beam.Map(
                lambda all_lines: write_whole_file(path, "".join(f"{x}\n" for x in sorted(all_lines)))
            )
        )


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
    """Items -> `items.tfrecord.gz` and the item / creator / category vocabularies."""

    def __init__(self, out: str, label=None):
        super().__init__(label)
        self._out = out

    def expand(self, items):
        _ = (
            items
            | "Encode" >> beam.Map(encode_item)
            | "Write"
            >> beam.io.WriteToTFRecord(
                os.path.join(self._out, "items"),
                file_name_suffix=".tfrecord.gz",
                shard_name_template="",
                compression_type=GZIP,
            )
        )
        vocab = os.path.join(self._out, "vocab")
        tokens = {
            "items": lambda i: [i["item_id"]],
            "creators": lambda i: [i["creator_id"]] if i["creator_id"] else [],
            "categories": lambda i: i["categories"],
        }
        for name, extract in tokens.items():
            _ = (
                items
                | f"{name.title()}Tokens" >> beam.FlatMap(extract)
                | f"{name.title()}Distinct" >> beam.Distinct()
                | f"{name.title()}Vocab" >> WriteSortedLines(f"{vocab}/{name}.txt")
            )
        return items


class WriteItemCounts(beam.PTransform):
    """Counters of positive train targets per item, and the items -> `item_counts.tsv`, every
    item listed (0 too)."""

    def __init__(self, out: str, items, label=None):
        super().__init__(label)
        self._path, self._items = os.path.join(out, "item_counts.tsv"), items

    def expand(self, counters):
        totals = counters | "Sum" >> beam.CombineGlobally(CountersSum())
        return (
            self._items
            | "Line"
            >> beam.Map(
                lambda i, n: f"{i['item_id']}\t{n.get(i['item_id'], 0)}", beam.pvalue.AsSingleton(totals)
            )
            | "WriteCounts" >> WriteSortedLines(self._path)
        )


class WriteDeadLetters(beam.PTransform):
    """Dead-letter records -> `dead_letter-*.jsonl`."""

    def __init__(self, out: str, label=None):
        super().__init__(label)
        self._prefix = os.path.join(out, "dead_letter")

    def expand(self, dead):
        return (
            dead
            | "ToJson" >> beam.Map(lambda d: json.dumps(d, sort_keys=True, default=str))
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
