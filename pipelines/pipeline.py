"""The preprocessing pipeline: raw events + items -> WORKDIR/data (see DESIGN.md "Artifacts")."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from ntr.pipelines.atomic import write_json
from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.events import ACTIONS, REASONS, Label
from ntr.pipelines.io import ReadRowBatches, check_inputs, input_bytes
from ntr.pipelines.items import CatalogueFn, ItemsFromEvents, ReadItems, item_dead_counts
from ntr.pipelines.outputs import (
    CUTS_PART,
    STATS_PART,
    WriteDeadLetters,
    WriteItemCounts,
    WriteItems,
    WriteJson,
    WriteStats,
    WriteWindows,
)
from ntr.pipelines.prepare import STATS_TAG, TIMESTAMPS_TAG, PrepareEvents, bucket_count, unpack_events
from ntr.pipelines.sequences import ITEM_COUNT_TAG, SPLITS, SUMMARY_TAG, BuildSequences, time_cuts
from ntr.pipelines.validate import DEAD_LETTER_TAG

VOCABS = ("items", "creators", "categories", "reasons", "actions")
_OUTPUT_GLOBS = (
    "beam-temp-*",
    "train-*",
    "valid-*",
    "test-*",
    "dead_letter-*",
    "items.tfrecord.gz",
    "vocab/*",
)


def build_pipeline(pipeline: beam.Pipeline, config: PreprocessConfig) -> None:
    """Adds every stage of preprocessing to `pipeline`; outputs go under `config.output_dir`."""
    out = config.output_dir
    rows = pipeline | "ReadEvents" >> ReadRowBatches(config.events_path)
    num_buckets = bucket_count(input_bytes(config.events_path))
    known = item_dead = None
    if config.items_path:
        item_buckets = bucket_count(input_bytes(config.items_path))
        items, item_dead = pipeline | "ReadItems" >> ReadItems(config.items_path, item_buckets)
        catalogue = items | "Catalogue" >> beam.CombineGlobally(CatalogueFn())
        known = catalogue | "KnownItems" >> beam.Map(lambda c: frozenset(c["items"]))

    prepared = rows | "PrepareEvents" >> PrepareEvents(config, known, num_buckets)
    cuts = time_cuts(config.split, prepared[TIMESTAMPS_TAG])
    sequences = prepared.events | "BuildSequences" >> BuildSequences(config, cuts)
    if not config.items_path:
        event_lists = prepared.events | "EventLists" >> beam.MapTuple(lambda _, packed: unpack_events(packed))
        items = event_lists | "ItemsFromEvents" >> ItemsFromEvents(num_buckets)
        catalogue = items | "Catalogue" >> beam.CombineGlobally(CatalogueFn())

    for split in SPLITS:
        _ = sequences[split] | f"Write{split.title()}" >> WriteWindows(out, split, config.num_shards)
    _ = items | "WriteItems" >> WriteItems(out, catalogue)
    _ = sequences[ITEM_COUNT_TAG] | "WriteItemCounts" >> WriteItemCounts(out, catalogue)
    all_dead = [prepared.dead_letter, sequences[DEAD_LETTER_TAG]]
    stat_parts = [prepared[STATS_TAG], sequences[SUMMARY_TAG]]
    if item_dead is not None:
        all_dead.append(item_dead)
        stat_parts.append(item_dead | "ItemDeadKinds" >> beam.Map(item_dead_counts))
    _ = all_dead | "AllDead" >> beam.Flatten() | "WriteDeadLetters" >> WriteDeadLetters(out)
    _ = stat_parts | "StatParts" >> beam.Flatten() | "WriteStats" >> WriteStats(out)
    if cuts is not None:
        _ = cuts | "WriteCuts" >> WriteJson(out, CUTS_PART)


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


def stats_from_counts(flat: dict, out: str, seconds: float, cuts: dict | None = None) -> dict:
    """stats.json from the summed flat counters (`{"labels.POSITIVE": 3, "rows_in": 4}`), the
    time cuts (global_time mode) and the run time; `out` holds the vocabularies to hash."""
    stats = nest_stats(flat)
    for key in ("rows_in", "rows_out", "rows_dead_letter", "users", "items_dead_letter"):
        stats.setdefault(key, 0)
    stats["labels"] = {label.name: stats.get("labels", {}).get(label.name, 0) for label in Label}
    stats["splits"] = {split: stats.get("splits", {}).get(split, 0) for split in SPLITS}
    if cuts is not None:
        stats["time_cuts"] = cuts
    stats["reconciled"] = stats["rows_in"] == stats["rows_out"] + stats["rows_dead_letter"]
    stats["seconds"] = round(seconds, 3)
    stats["events_per_second"] = round(stats["rows_in"] / seconds, 1) if seconds > 0 else None
    stats["vocab_hash"] = vocab_hash(out)
    return stats


def _finish_stats(config: PreprocessConfig, seconds: float) -> dict:
    """stats.json from the part files the pipeline wrote (which are then removed)."""
    out = config.output_dir
    part = os.path.join(out, f"{STATS_PART}.json")
    with open(part, encoding="utf-8") as handle:
        flat = json.loads(handle.read() or "{}")
    os.remove(part)
    cuts = None
    cuts_path = os.path.join(out, f"{CUTS_PART}.json")
    if os.path.exists(cuts_path):
        with open(cuts_path, encoding="utf-8") as handle:
            cuts = json.load(handle)
        os.remove(cuts_path)
    return stats_from_counts(flat, out, seconds, cuts)


def prepare_output_dir(out: str) -> None:
    """Creates `out`, removes a previous run's outputs and writes the fixed vocabularies
    (reasons, actions), which do not depend on the data."""
    os.makedirs(os.path.join(out, "vocab"), exist_ok=True)
    # stats.json is what says a run finished (it is written last, and `ntr train` needs it):
    # an earlier run's must go first, or a killed run's half-written shards would pass for done.
    for name in ("stats.json", "config.json"):
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    # Stale shards from an earlier run with another shard count would mix into this one.
    # Beam's temp entries from a killed run are directories.
    for pattern in _OUTPUT_GLOBS:
        for path in glob.glob(os.path.join(out, pattern)):
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    for name, tokens in (("reasons", REASONS), ("actions", ACTIONS)):
        with open(os.path.join(out, "vocab", f"{name}.txt"), "w", encoding="utf-8") as handle:
            handle.write("".join(f"{t}\n" for t in tokens))


def remove_temporaries(out: str) -> None:
    """Removes Beam's temp folders and half-written `.tmp-` files under `out`."""
    for path in glob.glob(os.path.join(out, "beam-temp-*")) + glob.glob(
        os.path.join(out, "**", "*.tmp-*"), recursive=True
    ):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)


def run_preprocess(config: PreprocessConfig, beam_args: list[str] | None = None) -> dict:
    """Runs the pipeline and writes stats.json and config.json next to its outputs.

    Args:
      config: the preprocessing config.
      beam_args: Beam pipeline options (`--runner`, ...); DirectRunner when none is given.

    Returns:
      The stats dict as written to `stats.json`.

    Raises:
      FileNotFoundError / ValueError: a missing input or an events CSV without the needed
        columns (checked before anything is written).
      RuntimeError: when the row counts do not reconcile (a bug: nothing may vanish).
    """
    check_inputs(config.events_path, config.items_path)  # before anything is written
    out = config.output_dir
    prepare_output_dir(out)

    options = PipelineOptions(beam_args or [])
    start = time.perf_counter()
    try:
        with beam.Pipeline(options=options) as pipeline:
            build_pipeline(pipeline, config)
    except BaseException:
        # Beam leaves its sinks' temp folders when a run fails; the outputs are incomplete
        # anyway (stats.json is written only after a run that finished), so nothing is kept.
        remove_temporaries(out)
        raise
    stats = _finish_stats(config, time.perf_counter() - start)
    made = {"preprocess": config.to_dict(), "vocab_hash": stats["vocab_hash"], "beam_args": beam_args or []}
    write_json(os.path.join(out, "config.json"), made)
    # Last, and whole: stats.json is what says the run finished (`prepare_output_dir`).
    write_json(os.path.join(out, "stats.json"), stats)
    if not stats["reconciled"]:
        raise RuntimeError(
            f"rows_in={stats['rows_in']} != rows_out={stats['rows_out']} + "
            f"rows_dead_letter={stats['rows_dead_letter']}: rows were lost; please report this."
        )
    return stats
