"""`ntr preprocess`: raw events + items -> WORKDIR/data/ with the Beam pipeline."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

from ntr.cli.beam_args import add_engine_argument, engine_args
from ntr.pipelines.config import SPLIT_MODES, PreprocessConfig, SplitConfig
from ntr.pipelines.events import REQUIRED_COLUMNS, LabelConfig
from ntr.pipelines.io import check_inputs, first_match, write_jsonl
from ntr.pipelines.pipeline import run_preprocess
from ntr.pipelines.readers import SOURCES, read_dataset

HELP = (
    "Validate, label, split and window raw events into TFRecords (Apache Beam). Unknown flags "
    "(e.g. --runner=FlinkRunner, --direct_num_workers=2) are passed to Beam; --dask-workers N runs "
    "it on a local dask.distributed cluster."
)
ACCEPTS_BEAM_ARGS = True
_LABEL, _SPLIT = LabelConfig(), SplitConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        default="raw",
        choices=("raw",) + SOURCES,
        help="raw: canonical files in WORKDIR/raw (or --events/--items); ml100k / kuairand: "
        "convert the dataset at --data into WORKDIR/raw first",
    )
    parser.add_argument(
        "--data", help="dataset folder or file for --source ml100k / kuairand / kuairand_pure"
    )
    parser.add_argument(
        "--creators",
        help="ml100k only: folder or CSV of film directors (README: Public datasets); the first "
        "verified director is the creator",
    )
    parser.add_argument("--events", help="events file/glob (default WORKDIR/raw/events.jsonl)")
    parser.add_argument("--items", help="item catalogue (default WORKDIR/raw/items.jsonl if present)")
    parser.add_argument("--split-mode", default=_SPLIT.mode, choices=SPLIT_MODES, help="how to split")
    parser.add_argument(
        "--holdout-events",
        type=int,
        default=_SPLIT.holdout_events,
        help="last_events: per-user valid and test events",
    )
    parser.add_argument(
        "--min-train-events",
        type=int,
        default=_SPLIT.min_train_events,
        help="last_events: train events a user keeps at least",
    )
    parser.add_argument("--valid-start", type=int, help="global_time: first valid timestamp (unix s)")
    parser.add_argument("--test-start", type=int, help="global_time: first test timestamp (unix s)")
    parser.add_argument(
        "--valid-quantile",
        type=float,
        default=_SPLIT.valid_quantile,
        help="global_time: valid cut quantile when --valid-start is not given",
    )
    parser.add_argument(
        "--test-quantile",
        type=float,
        default=_SPLIT.test_quantile,
        help="global_time: test cut quantile when --test-start is not given",
    )
    parser.add_argument("--max-len", type=int, default=50, help="events per sequence window")
    parser.add_argument(
        "--skip-ms", type=int, default=_LABEL.skip_ms, help="a view watched less than this is a skip"
    )
    parser.add_argument(
        "--skip-ratio",
        type=float,
        default=_LABEL.skip_ratio,
        help="a view watched less than this share is a skip",
    )
    parser.add_argument(
        "--positive-ratio",
        type=float,
        default=_LABEL.positive_ratio,
        help="a view watched at least this share is positive",
    )
    parser.add_argument(
        "--positive-ms",
        type=int,
        default=_LABEL.positive_ms,
        help="positive watch time when duration is unknown",
    )
    parser.add_argument(
        "--no-fill-implied-reasons",
        action="store_true",
        help="keep reason empty on not_interested/hide_creator/report",
    )
    parser.add_argument(
        "--num-shards", type=int, default=0, help="output shards per split (0: runner decides)"
    )
    add_engine_argument(parser)


def config_from_args(args: argparse.Namespace) -> PreprocessConfig:
    raw = os.path.join(args.workdir, "raw")
    items = args.items
    if items is None and os.path.exists(os.path.join(raw, "items.jsonl")):
        items = os.path.join(raw, "items.jsonl")
    return PreprocessConfig(
        events_path=args.events or os.path.join(raw, "events.jsonl"),
        items_path=items or "",
        output_dir=os.path.join(args.workdir, "data"),
        label=LabelConfig(
            skip_ms=args.skip_ms,
            skip_ratio=args.skip_ratio,
            positive_ratio=args.positive_ratio,
            positive_ms=args.positive_ms,
        ),
        split=SplitConfig(
            mode=args.split_mode,
            holdout_events=args.holdout_events,
            min_train_events=args.min_train_events,
            valid_start=args.valid_start,
            test_start=args.test_start,
            valid_quantile=args.valid_quantile,
            test_quantile=args.test_quantile,
        ),
        max_len=args.max_len,
        fill_implied_reasons=not args.no_fill_implied_reasons,
        num_shards=args.num_shards,
    )


def convert_dataset(args: argparse.Namespace, label: LabelConfig) -> None:
    """Writes a public dataset as canonical WORKDIR/raw/events.jsonl + items.jsonl."""
    if not args.data:
        raise ValueError(
            f"--source {args.source} needs --data PATH: the dataset's folder "
            "(README: Public datasets says what goes there)."
        )
    events, items = read_dataset(args.source, args.data, label, args.creators)
    raw = os.path.join(args.workdir, "raw")
    os.makedirs(raw, exist_ok=True)
    write_jsonl(os.path.join(raw, "events.jsonl"), events)
    write_jsonl(os.path.join(raw, "items.jsonl"), items)
    with open(os.path.join(raw, "source.json"), "w", encoding="utf-8") as handle:
        creators = os.path.abspath(args.creators) if args.creators else None
        json.dump({"source": args.source, "data": os.path.abspath(args.data), "creators": creators,
                   "events": len(events), "items": len(items), "label": dataclasses.asdict(label)},
                  handle, indent=2)  # fmt: skip
    print(f"converted {args.source}: {len(events)} events, {len(items)} items -> {raw}/")


def print_stats(stats: dict) -> None:
    n = max(stats["rows_out"], 1)
    print(
        f"pipeline: rows_in={stats['rows_in']} rows_out={stats['rows_out']} "
        f"rows_dead_letter={stats['rows_dead_letter']} (reconciled: {stats['reconciled']})"
    )
    if stats.get("dead_letter"):
        print(f"  dead letters by kind: {stats['dead_letter']}")
    rates = "  ".join(f"{k} {v} ({100 * v / n:.2f}%)" for k, v in stats["labels"].items())
    print(f"  labels: {rates}")
    print(f"  users {stats['users']}, sequences per split {stats['splits']}")
    print(f"  {stats['seconds']:.1f}s, {stats['events_per_second']:.0f} events/s")


def check_events_exist(args: argparse.Namespace, config: PreprocessConfig) -> None:
    """A missing events file, said with the fix that fits how its path was given."""
    try:
        first_match(config.events_path)
    except FileNotFoundError as err:
        if args.events:
            raise FileNotFoundError(f"--events {args.events}: no such file (check the path).") from err
        raise FileNotFoundError(
            f"No events at {config.events_path}: run `ntr generate --workdir {args.workdir}` first, "
            "pass --events PATH, or --source ml100k|kuairand|kuairand_pure --data PATH."
        ) from err


def unusable(stats: dict, config: PreprocessConfig) -> str | None:
    """Why the output cannot be trained on (None when it can), with what to change."""
    if stats["rows_in"] and not stats["rows_out"]:
        return (
            f"all {stats['rows_in']} rows went to the dead letters ({stats.get('dead_letter', {})}); "
            f"see {config.output_dir}/dead_letter-*.jsonl for each row's error and fix the input "
            f"(columns {', '.join(REQUIRED_COLUMNS)})."
        )
    if not stats["rows_in"]:
        return f"{config.events_path} holds no events."
    if not stats["splits"].get("train"):
        return (
            f"0 training windows from {stats['rows_out']} events of {stats['users']} users "
            f"(windows per split {stats['splits']}): a user needs at least 2 events for a window, "
            f"and {2 * config.split.holdout_events + config.split.min_train_events} "
            "(2 x --holdout-events + --min-train-events) before any go to valid/test. Use a "
            "bigger log, or lower --holdout-events / --min-train-events."
        )
    return None


def run(args: argparse.Namespace, extra: list[str]) -> int:
    if args.source != "raw":
        # Convert first: the config picks up WORKDIR/raw/items.jsonl only if it exists, and on a
        # fresh work directory the reader is what writes it.
        convert_dataset(args, config_from_args(args).label)
    config = config_from_args(args)
    check_events_exist(args, config)
    check_inputs(config.events_path, config.items_path)
    with engine_args(args.dask_workers, extra) as flags:
        runner = next((a for a in flags if a.startswith("--runner")), "--runner=DirectRunner")
        print(f"running the Beam pipeline ({runner.split('=')[-1]}) on {config.events_path} ...", flush=True)
        stats = run_preprocess(config, flags)
    print_stats(stats)
    report_outputs(stats, config)
    return 0


def report_outputs(stats: dict, config: PreprocessConfig) -> None:
    """Raises when nothing usable was written; else says what was written."""
    problem = unusable(stats, config)
    if problem:
        raise ValueError(f"nothing usable was written: {problem}")
    out = config.output_dir
    print(f"  wrote {out}/ (train/valid/test-*.tfrecord.gz, items, vocab/, item_counts.tsv, stats.json)")
    if not stats["splits"].get("valid") or not stats["splits"].get("test"):
        print(f"  warning: no valid or test windows ({stats['splits']}); training needs valid ones")


def build_defaults(workdir: str, **overrides) -> argparse.Namespace:
    """The args `ntr preprocess --workdir WORKDIR` would get, with `overrides` applied."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir")
    add_arguments(parser)
    args = parser.parse_args(["--workdir", workdir])
    for name, value in overrides.items():
        setattr(args, name, value)
    return args
