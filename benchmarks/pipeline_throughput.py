"""Foundation benchmark: world generation, label rates, and pipeline events/s on DirectRunner.

For each dataset (the default synthetic world, MovieLens 100K, KuaiRand like/hate and, with
--large, the 10^6-event world) it runs, in the same process and on the same input:

- the reference: the same validation, labelling, sequence and encoding functions in a plain
  single-process Python loop writing every output the pipeline writes (no Beam), and
- the Beam pipeline on DirectRunner, in-memory (default) and with 2 worker processes,

checks that every runner's outputs equal the reference's record for record
(`ntr.pipelines.compare`), and writes events/s and the ratio to the reference.

    python -m benchmarks.pipeline_throughput [--data $NTR_DATASETS] [--large]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time

from benchmarks.common import DATASETS_DIR, write_section
from ntr.pipelines.compare import differences
from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.encode import encode_item, encode_window
from ntr.pipelines.io import BATCH_ROWS, write_jsonl
from ntr.pipelines.items import (
    CatalogueFn,
    bare_items,
    first_items,
    item_dead_counts,
    longest_durations,
    normalize_items,
)
from ntr.pipelines.outputs import dead_letter_line
from ntr.pipelines.pipeline import prepare_output_dir, run_preprocess, stats_from_counts
from ntr.pipelines.prepare import prepare_rows
from ntr.pipelines.readers import read_dataset
from ntr.pipelines.sequences import SPLITS, build_user_sequences
from ntr.pipelines.validate import parse_json_line
from ntr.simulation.world import scaled_config, simulate, write_world
from ntr.tfenv import tf

RUNNERS = {
    "beam_direct": [],
    "beam_direct_2proc": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}


def _lines(path: str):
    with open(path, encoding="utf-8") as handle:
        yield from (line.rstrip("\r\n") for line in handle if line.strip())


def _write_lines(path: str, lines) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))


def reference_preprocess(config: PreprocessConfig) -> dict:
    """Every output of `ntr preprocess` (last_events split, JSONL inputs), written by the
    pipeline's own functions in a single-process Python loop; returns the stats it wrote."""
    assert config.split.mode == "last_events", "the reference implements the last_events split"
    start = time.perf_counter()
    out = config.output_dir
    prepare_output_dir(out)
    counts, dead = collections.Counter(), []
    items: dict[str, dict] = {}
    if config.items_path:
        normalized, dead = normalize_items(parse_json_line(line) for line in _lines(config.items_path))
        unique, duplicates = first_items(normalized)
        items = {item["item_id"]: item for item in unique}
        dead += duplicates
        for record in dead:
            counts.update(item_dead_counts(record))
    known = frozenset(items) if config.items_path else None

    by_user = collections.defaultdict(list)
    lines = list(_lines(config.events_path))
    for i in range(0, len(lines), BATCH_ROWS):
        rows = [parse_json_line(line) for line in lines[i : i + BATCH_ROWS]]
        users, batch_dead, batch_counts = prepare_rows(rows, config, known)
        for user_id, events in users.items():
            by_user[user_id].extend(events)
        dead += batch_dead
        counts.update(batch_counts)

    options = tf.io.TFRecordOptions(compression_type="GZIP")
    writers = {
        s: tf.io.TFRecordWriter(os.path.join(out, f"{s}-00000-of-00001.tfrecord.gz"), options) for s in SPLITS
    }
    item_counts = collections.Counter()
    for user_id, events in by_user.items():
        windows, duplicates, summary, user_items = build_user_sequences(user_id, events, config, None)
        dead += duplicates
        counts.update(summary)
        item_counts.update(user_items)
        for window in windows:
            writers[window["split"]].write(encode_window(window))
    for writer in writers.values():
        writer.close()

    if not config.items_path:  # bare items: the longest duration seen
        parts = (longest_durations(events) for events in by_user.values())
        items = {item["item_id"]: item for item in bare_items(parts)}
    with tf.io.TFRecordWriter(os.path.join(out, "items.tfrecord.gz"), options) as writer:
        for item in items.values():
            writer.write(encode_item(item))
    catalogue = CatalogueFn()
    vocabs = catalogue.extract_output(catalogue.add_input(catalogue.create_accumulator(), items.values()))
    for name, tokens in vocabs.items():
        _write_lines(os.path.join(out, "vocab", f"{name}.txt"), tokens)
    _write_lines(os.path.join(out, "item_counts.tsv"), sorted(f"{i}\t{item_counts[i]}" for i in items))
    _write_lines(
        os.path.join(out, "dead_letter-00000-of-00001.jsonl"),
        map(dead_letter_line, dead),
    )
    stats = stats_from_counts({k: v for k, v in counts.items() if v}, out, time.perf_counter() - start)
    with open(os.path.join(out, "stats.json"), "w", encoding="utf-8") as handle:
        json.dump(stats, handle, indent=2, sort_keys=True)
    return stats


def measure(name: str, events_path: str, items_path: str, root: str, runners: dict) -> dict:
    rows = {}
    ref_config = PreprocessConfig(events_path=events_path, items_path=items_path, output_dir=f"{root}/ref")
    start = time.perf_counter()
    ref = reference_preprocess(ref_config)
    ref_seconds = time.perf_counter() - start
    rows["reference"] = {"seconds": ref_seconds, "events_per_second": ref["rows_in"] / ref_seconds}
    stats = None
    for runner, args in runners.items():
        config = PreprocessConfig(
            events_path=events_path, items_path=items_path, output_dir=f"{root}/{runner}"
        )
        start = time.perf_counter()
        stats = run_preprocess(config, args)
        seconds = time.perf_counter() - start
        differ = differences(ref_config.output_dir, config.output_dir)
        assert not differ, f"{name} {runner}: outputs differ from the reference's: {differ}"
        rows[runner] = {"seconds": seconds, "events_per_second": stats["rows_in"] / seconds}
        print(f"  {name} {runner}: {seconds:.1f}s, {stats['rows_in'] / seconds:.0f} events/s", flush=True)
    return {"runs": rows, "stats": stats}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=DATASETS_DIR, help="folder with ml-100k and kuairand27k_like_hate")
    parser.add_argument("--large", action="store_true", help="also the --scale large world (10^6 events)")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="ntr-bench-")
    worlds, results = {}, {}
    for scale in ["default"] + (["large"] if args.large else []):
        start = time.perf_counter()
        log = simulate(scaled_config(scale, seed=0))
        summary = write_world(log, f"{root}/{scale}/raw")
        worlds[scale] = dict(summary, seconds=time.perf_counter() - start)
        print(f"world {scale}: {summary['events']} events in {worlds[scale]['seconds']:.1f}s", flush=True)
        results[f"world {scale}"] = (f"{root}/{scale}/raw/events.jsonl", f"{root}/{scale}/raw/items.jsonl")
    for source, folder in (("ml100k", "ml-100k"), ("kuairand", "kuairand27k_like_hate")):
        events, items = read_dataset(
            source, os.path.join(args.data, folder), PreprocessConfig("-", "-").label
        )
        os.makedirs(f"{root}/{source}", exist_ok=True)
        write_jsonl(f"{root}/{source}/events.jsonl", events)
        write_jsonl(f"{root}/{source}/items.jsonl", items)
        results[source] = (f"{root}/{source}/events.jsonl", f"{root}/{source}/items.jsonl")
    measured = {}
    for name, (events_path, items_path) in results.items():
        runners = RUNNERS if not name.endswith("large") else {"beam_direct": []}
        measured[name] = measure(
            name, events_path, items_path, f"{root}/out/{name.replace(' ', '_')}", runners
        )

    lines = [
        "### World generation (`ntr generate`)\n",
        "| scale | users | items | events | seconds (simulate + write) | explicit negatives | skips | positives |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scale, s in worlds.items():
        lines.append(
            f"| {scale} | {s['users']:,} | {s['items']:,} | {s['events']:,} | {s['seconds']:.1f} | "
            f"{100 * s['explicit_negative_rate']:.2f}% | {100 * s['skip_rate']:.2f}% | "
            f"{100 * s['positive_rate']:.2f}% |"
        )
    lines += [
        "\n### Pipeline throughput (`ntr preprocess`, JSONL in, TFRecords out)\n",
        "Reference = the same functions in a single-process Python loop (no Beam) writing every output "
        "the pipeline writes (windows, items, vocabularies, item counts, dead letters, stats.json); "
        "ratio = events/s over the reference's. Every runner's outputs equal the reference's record for "
        "record (asserted with `ntr.pipelines.compare`).\n",
        "| dataset | events | runner | seconds | events/s | ratio to reference |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in measured.items():
        ref = m["runs"]["reference"]["events_per_second"]
        for runner, r in m["runs"].items():
            lines.append(
                f"| {name} | {m['stats']['rows_in']:,} | {runner} | {r['seconds']:.1f} | "
                f"{r['events_per_second']:,.0f} | {r['events_per_second'] / ref:.2f} |"
            )
    lines += [
        "\n### Label rates after preprocessing (share of rows_out)\n",
        "| dataset | rows_out | dead letters | POSITIVE | NEUTRAL | EXPLICIT_NEGATIVE | IMPLICIT_NEGATIVE | sequences train / valid / test |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, m in measured.items():
        s = m["stats"]
        n = max(s["rows_out"], 1)
        rates = " | ".join(
            f"{100 * s['labels'][k] / n:.2f}%"
            for k in ("POSITIVE", "NEUTRAL", "EXPLICIT_NEGATIVE", "IMPLICIT_NEGATIVE")
        )
        splits = " / ".join(f"{s['splits'][k]:,}" for k in SPLITS)
        lines.append(f"| {name} | {s['rows_out']:,} | {s['rows_dead_letter']:,} | {rates} | {splits} |")
    write_section(
        "pipeline_throughput", "Foundation: world generation and pipeline throughput", "\n".join(lines)
    )
    print(f"wrote BENCHMARKS.md (scratch outputs in {root})")


if __name__ == "__main__":
    main()
