"""The preprocessing pipeline: raw events + items -> WORKDIR/data (see DESIGN.md "Artifacts")."""

from __future__ import annotations

import collections
import glob
import hashlib
import json
import os
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.encode import encode_item, encode_window
from ntr.pipelines.events import ACTIONS, REASONS, Label
from ntr.pipelines.io import ReadRows, normalize_item
from ntr.pipelines.label import LabelEvents
from ntr.pipelines.sequences import ITEM_COUNT_TAG, SPLITS, SUMMARY_TAG, BuildSequences, time_cuts
from ntr.pipelines.validate import DEAD_LETTER_TAG, ValidateEvents, dead_letter

VOCABS = ("items", "creators", "categories", "reasons", "actions")
_STATS_PART = "_stats_part"
_OUTPUT_GLOBS = (
    "beam-temp-*",
    "vocab/beam-temp-*",
    "train-*",
    "valid-*",
    "test-*",
    "dead_letter-*",
    "items.tfrecord.gz",
    "vocab/*",
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


class _NormalizeItemFn(beam.DoFn):
    def process(self, row):
        try:
            yield normalize_item(row)
        except (ValueError, TypeError) as err:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(row, "bad_item", str(err)))


def _first_item(keyed):
    """One item per id: the first by content; the others are dead letters."""
    item_id, rows = keyed
    rows = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    yield rows[0]
    for extra in rows[1:]:
        yield beam.pvalue.TaggedOutput(
            DEAD_LETTER_TAG, dead_letter(extra, "duplicate_item", f"item_id {item_id!r} repeated")
        )


class ReadItems(beam.PTransform):
    """Item catalogue file -> (canonical items, item dead letters: `bad_item`, `duplicate_item`)."""

    def __init__(self, pattern: str, label=None):
        super().__init__(label)
        self._pattern = pattern

    def expand(self, pbegin):
        normalized = (
            pbegin
            | "Read" >> ReadRows(self._pattern)
            | "Normalize" >> beam.ParDo(_NormalizeItemFn()).with_outputs(DEAD_LETTER_TAG, main="items")
        )
        unique = (
            normalized.items
            | "KeyById" >> beam.Map(lambda item: (item["item_id"], item))
            | "GroupById" >> beam.GroupByKey()
            | "First" >> beam.FlatMap(_first_item).with_outputs(DEAD_LETTER_TAG, main="items")
        )
        dead = (normalized.dead_letter, unique.dead_letter) | "ItemDead" >> beam.Flatten()
        return unique.items, dead


def _items_from_events(keyed):
    item_id, durations = keyed
    known = [d for d in durations if d is not None]
    return {
        "item_id": item_id,
        "creator_id": "",
        "categories": [],
        "duration_ms": max(known) if known else None,
        "text": "",
    }


def _write_lines(pcoll, path: str, label: str):
    """A PCollection of sortable strings -> one file with them sorted, one per line."""
    return (
        pcoll
        | f"{label}Collect" >> beam.combiners.ToList()
        | f"{label}Sort" >> beam.FlatMap(sorted)
        | f"{label}Write" >> beam.io.WriteToText(path, shard_name_template="", append_trailing_newlines=True)
    )


def _sorted_vocab(pcoll, path: str, label: str):
    distinct = pcoll | f"{label}Distinct" >> beam.Distinct()
    return _write_lines(distinct, path, label)


def build_pipeline(pipeline: beam.Pipeline, config: PreprocessConfig) -> None:
    """Adds every stage of preprocessing to `pipeline`; outputs go under `config.output_dir`."""
    out = config.output_dir
    raw = pipeline | "ReadEvents" >> ReadRows(config.events_path)
    if config.items_path:
        items, item_dead = pipeline | "ReadItems" >> ReadItems(config.items_path)
        known = items | "ItemIds" >> beam.Map(lambda i: i["item_id"])
        known = known | "KnownItems" >> beam.combiners.ToList() | beam.Map(frozenset)
    else:
        items, item_dead, known = None, None, None

    validated = raw | "ValidateEvents" >> ValidateEvents(known)
    labelled = validated.events | "LabelEvents" >> LabelEvents(config)
    cuts = time_cuts(config.split, labelled | "Timestamps" >> beam.Map(lambda e: e["timestamp"]))
    sequences = labelled | "BuildSequences" >> BuildSequences(config, cuts)

    if items is None:
        items = (
            labelled
            | "ItemDurations" >> beam.Map(lambda e: (e["item_id"], e["duration_ms"]))
            | "GroupDurations" >> beam.GroupByKey()
            | "ItemsFromEvents" >> beam.Map(_items_from_events)
        )

    for split in SPLITS:
        _ = (
            sequences[split]
            | f"Encode{split.title()}" >> beam.Map(encode_window)
            | f"Write{split.title()}"
            >> beam.io.WriteToTFRecord(
                os.path.join(out, split),
                file_name_suffix=".tfrecord.gz",
                num_shards=config.num_shards,
                compression_type=beam.io.filesystem.CompressionTypes.GZIP,
            )
        )
    _ = (
        items
        | "EncodeItems" >> beam.Map(encode_item)
        | "WriteItems"
        >> beam.io.WriteToTFRecord(
            os.path.join(out, "items"),
            file_name_suffix=".tfrecord.gz",
            shard_name_template="",
            compression_type=beam.io.filesystem.CompressionTypes.GZIP,
        )
    )

    event_dead = (validated.dead_letter, sequences[DEAD_LETTER_TAG]) | "EventDead" >> beam.Flatten()
    all_dead = [event_dead] if item_dead is None else [event_dead, item_dead]
    _ = (
        all_dead
        | "AllDead" >> beam.Flatten()
        | "DeadToJson" >> beam.Map(lambda d: json.dumps(d, sort_keys=True, default=str))
        | "WriteDead" >> beam.io.WriteToText(os.path.join(out, "dead_letter"), file_name_suffix=".jsonl")
    )

    vocab = os.path.join(out, "vocab")
    _sorted_vocab(items | "ItemId" >> beam.Map(lambda i: i["item_id"]), f"{vocab}/items.txt", "ItemVocab")
    _sorted_vocab(
        items | "Creator" >> beam.Map(lambda i: i["creator_id"]) | beam.Filter(bool),
        f"{vocab}/creators.txt",
        "CreatorVocab",
    )
    _sorted_vocab(
        items | "Categories" >> beam.FlatMap(lambda i: i["categories"]),
        f"{vocab}/categories.txt",
        "CategoryVocab",
    )

    counts = (
        (
            items | "ZeroCounts" >> beam.Map(lambda i: (i["item_id"], 0)),
            sequences[ITEM_COUNT_TAG],
        )
        | "AllCounts" >> beam.Flatten()
        | "SumCounts" >> beam.CombinePerKey(sum)
        | "CountLine" >> beam.MapTuple(lambda item, n: f"{item}\t{n}")
    )
    _write_lines(counts, os.path.join(out, "item_counts.tsv"), "ItemCounts")

    stat_parts = [
        raw | "RowsIn" >> beam.Map(lambda _: collections.Counter(rows_in=1)),
        event_dead
        | "DeadKinds"
        >> beam.Map(lambda d: collections.Counter({"rows_dead_letter": 1, f"dead_letter.{d['kind']}": 1})),
        sequences[SUMMARY_TAG],
    ]
    if item_dead is not None:
        stat_parts.append(
            item_dead
            | "ItemDeadKinds"
            >> beam.Map(
                lambda d: collections.Counter({"items_dead_letter": 1, f"dead_letter.{d['kind']}": 1})
            )
        )
    _ = (
        stat_parts
        | "StatParts" >> beam.Flatten()
        | "SumStats" >> beam.CombineGlobally(CountersSum())
        | "StatsJson" >> beam.Map(json.dumps)
        | "WriteStats"
        >> beam.io.WriteToText(
            os.path.join(out, _STATS_PART), file_name_suffix=".json", shard_name_template=""
        )
    )
    if cuts is not None:
        _ = (
            cuts
            | "CutsJson" >> beam.Map(json.dumps)
            | "WriteCuts"
            >> beam.io.WriteToText(
                os.path.join(out, "_cuts"), file_name_suffix=".json", shard_name_template=""
            )
        )


def nest_stats(flat: dict) -> dict:
    """`{"labels.POSITIVE": 3, "rows_in": 4}` -> `{"labels": {"POSITIVE": 3}, "rows_in": 4}`."""
    nested: dict = {}
    for key, value in sorted(flat.items()):
        *path, leaf = key.split(".")
        node = nested
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def vocab_hash(data_dir: str) -> str:
    """sha256 over the vocab files: later stages refuse data whose vocab they were not built on."""
    digest = hashlib.sha256()
    for name in VOCABS:
        with open(os.path.join(data_dir, "vocab", f"{name}.txt"), "rb") as handle:
            digest.update(name.encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


def _finish_stats(config: PreprocessConfig, seconds: float) -> dict:
    out = config.output_dir
    part = os.path.join(out, f"{_STATS_PART}.json")
    with open(part, encoding="utf-8") as handle:
        flat = json.loads(handle.read() or "{}")
    os.remove(part)
    stats = nest_stats(flat)
    for key in ("rows_in", "rows_out", "rows_dead_letter", "users", "items_dead_letter"):
        stats.setdefault(key, 0)
    stats["labels"] = {label.name: stats.get("labels", {}).get(label.name, 0) for label in Label}
    stats["splits"] = {split: stats.get("splits", {}).get(split, 0) for split in SPLITS}
    cuts_path = os.path.join(out, "_cuts.json")
    if os.path.exists(cuts_path):
        with open(cuts_path, encoding="utf-8") as handle:
            stats["time_cuts"] = json.load(handle)
        os.remove(cuts_path)
    stats["reconciled"] = stats["rows_in"] == stats["rows_out"] + stats["rows_dead_letter"]
    stats["seconds"] = round(seconds, 3)
    stats["events_per_second"] = round(stats["rows_in"] / seconds, 1) if seconds > 0 else None
    stats["vocab_hash"] = vocab_hash(out)
    return stats


def run_preprocess(config: PreprocessConfig, beam_args: list[str] | None = None) -> dict:
    """Runs the pipeline and writes stats.json and config.json next to its outputs.

    Args:
      config: the preprocessing config.
      beam_args: Beam pipeline options (`--runner`, ...); DirectRunner when none is given.

    Returns:
      The stats dict as written to `stats.json`.

    Raises:
      RuntimeError: when the row counts do not reconcile (a bug: nothing may vanish).
    """
    out = config.output_dir
    os.makedirs(os.path.join(out, "vocab"), exist_ok=True)
    # Stale shards from an earlier run with another shard count would mix into this one.
    for pattern in _OUTPUT_GLOBS:
        for path in glob.glob(os.path.join(out, pattern)):
            os.remove(path)
    for name, tokens in (("reasons", REASONS), ("actions", ACTIONS)):
        with open(os.path.join(out, "vocab", f"{name}.txt"), "w", encoding="utf-8") as handle:
            handle.write("".join(f"{t}\n" for t in tokens))

    options = PipelineOptions(beam_args or [])
    start = time.perf_counter()
    with beam.Pipeline(options=options) as pipeline:
        build_pipeline(pipeline, config)
    stats = _finish_stats(config, time.perf_counter() - start)
    with open(os.path.join(out, "stats.json"), "w", encoding="utf-8") as handle:
        json.dump(stats, handle, indent=2, sort_keys=True)
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(
            {"preprocess": config.to_dict(), "vocab_hash": stats["vocab_hash"], "beam_args": beam_args or []},
            handle,
            indent=2,
            sort_keys=True,
        )
    if not stats["reconciled"]:
        raise RuntimeError(
            f"rows_in={stats['rows_in']} != rows_out={stats['rows_out']} + "
            f"rows_dead_letter={stats['rows_dead_letter']}: rows were lost; please report this."
        )
    return stats
