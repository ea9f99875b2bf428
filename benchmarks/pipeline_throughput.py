"""Foundation benchmark: world generation, label rates, and pipeline events/s on DirectRunner.

For each dataset (the default synthetic world, MovieLens 100K, KuaiRand like/hate and, with
--large, the 10^6-event world) it runs, in the same process and on the same input:

- the reference: the same validation, labelling, sequence and encoding functions in a plain
  single-process Python loop writing the same TFRecords (no Beam), and
- the Beam pipeline on DirectRunner, in-memory (default) and with 2 worker processes,

checks that all produce the same counts, and writes events/s and the ratio to the reference.

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
from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.encode import encode_window
from ntr.pipelines.io import write_jsonl
from ntr.pipelines.label import label_one
from ntr.pipelines.pipeline import run_preprocess
from ntr.pipelines.readers import read_dataset
from ntr.pipelines.sequences import SPLITS, build_user_sequences
from ntr.pipelines.validate import InvalidRow, parse_event, parse_json_line
from ntr.simulation.world import scaled_config, simulate, write_world
from ntr.tfenv import tf

RUNNERS = {
    "beam_direct": [],
    "beam_direct_2proc": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}


def reference_preprocess(config: PreprocessConfig) -> dict:
    """Single-process Python with the pipeline's own functions; returns counts like stats.json."""
    known = None
    if config.items_path:
        with open(config.items_path, encoding="utf-8") as handle:
            known = frozenset(json.loads(line)["item_id"] for line in handle if line.strip())
    counts = collections.Counter()
    by_user = collections.defaultdict(list)
    with open(config.events_path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            counts["rows_in"] += 1
            row = parse_json_line(line)
            try:
                if "_malformed" in row:
                    raise InvalidRow("malformed_row", row["_error"])
                event = label_one(parse_event(row, known), config)
            except InvalidRow:
                counts["rows_dead_letter"] += 1
                continue
            by_user[event["user_id"]].append(event)
    os.makedirs(config.output_dir, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    writers = {
        s: tf.io.TFRecordWriter(os.path.join(config.output_dir, f"{s}.tfrecord.gz"), options) for s in SPLITS
    }
    for user_id, events in by_user.items():
        windows, duplicates, summary, _ = build_user_sequences(user_id, events, config, None)
        counts["rows_dead_letter"] += len(duplicates)
        counts.update({k: v for k, v in summary.items() if k == "rows_out" or k.startswith("labels.")})
        for window in windows:
            writers[window["split"]].write(encode_window(window))
            counts[f"splits.{window['split']}"] += 1
    for writer in writers.values():
        writer.close()
    return dict(counts)


def measure(name: str, events_path: str, items_path: str, root: str, runners: dict) -> dict:
    rows = {}
    ref_config = PreprocessConfig(events_path=events_path, items_path=items_path, output_dir=f"{root}/ref")
    os.makedirs(ref_config.output_dir, exist_ok=True)
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
        for key in ("rows_in", "rows_out", "rows_dead_letter"):
            assert stats[key] == ref.get(key, 0), (name, runner, key, stats[key], ref.get(key))
        assert stats["splits"] == {s: ref.get(f"splits.{s}", 0) for s in SPLITS}, (name, runner)
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
        "Reference = the same functions in a single-process Python loop (no Beam); ratio = events/s "
        "over the reference's. Every runner produced the same rows_in/rows_out/dead-letter and "
        "sequence counts as the reference (asserted).\n",
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
