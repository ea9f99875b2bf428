"""Sequence stage: labelled events -> per-user, time-ordered, split, fixed-length windows.

A window is a dict `{"user_id", "split", "events": [event, ...], "is_target": [0|1, ...]}`.
The model reads position t's state to predict event t+1, so a target never sits at a window's
first position. Windows are cut so that every target event of a split is a target in exactly
one window, with as much history before it as `max_len` allows (earlier splits' events are
history for later splits, never targets).
"""

from __future__ import annotations

import collections
import json

import apache_beam as beam

from ntr.pipelines.config import PreprocessConfig, SplitConfig
from ntr.pipelines.prepare import unpack_events
from ntr.pipelines.validate import DEAD_LETTER_TAG, dead_letter

SPLITS = ("train", "valid", "test")
SUMMARY_TAG = "summary"
ITEM_COUNT_TAG = "item_counts"


def event_sort_key(event: dict) -> tuple:
    """Time order; ties (same second) broken by item then action so the order is stable."""
    return (event["timestamp"], event["item_id"], event["action"], json.dumps(event, sort_keys=True))


def assign_splits(timestamps: list[int], split: SplitConfig, cuts: dict | None) -> list[str]:
    """The split of each of one user's events (time-ordered).

    Args:
      timestamps: [n] the user's event times, ascending.
      split: the split rule.
      cuts: for `global_time`, `{"valid_start": int, "test_start": int}`.

    Returns:
      [n] split names.
    """
    n = len(timestamps)
    if split.mode == "last_events":
        h = split.holdout_events
        if n < 2 * h + split.min_train_events:
            return ["train"] * n
        return ["train"] * (n - 2 * h) + ["valid"] * h + ["test"] * h
    valid_start, test_start = cuts["valid_start"], cuts["test_start"]
    return ["train" if t < valid_start else "valid" if t < test_start else "test" for t in timestamps]


def make_windows(targets: list[int], max_len: int) -> list[tuple[int, int, list[int]]]:
    """Cuts windows that make each target position a target exactly once.

    Args:
      targets: ascending positions (>= 1: position 0 has no history to predict it from).
      max_len: the longest window.

    Returns:
      Chronological `(start, end, covered_targets)`: the window is positions [start, end) and
      covered targets are all in [start + 1, end).
    """
    windows = []
    remaining = list(targets)
    while remaining:
        end = remaining[-1] + 1
        start = max(0, end - max_len)
        first = len(remaining)
        while first > 0 and remaining[first - 1] >= start + 1:
            first -= 1
        windows.append((start, end, remaining[first:]))
        del remaining[first:]
    windows.reverse()
    return windows


def build_user_sequences(
    user_id: str, events: list[dict], config: PreprocessConfig, cuts: dict | None
) -> tuple[list[dict], list[dict], collections.Counter, collections.Counter]:
    """All of one user's work: dedup, order, split, window, count.

    Args:
      user_id: the user.
      events: the user's labelled events, any order.
      config: the preprocessing config.
      cuts: the global time cuts (`global_time` mode) or None.

    Returns:
      (windows, duplicate dead letters, summary counter (duplicates counted as dead letters),
      positive train targets per item).
    """
    ordered = sorted(events, key=event_sort_key)
    kept, duplicates, seen = [], [], set()
    for event in ordered:
        key = (event["item_id"], event["timestamp"], event["action"])
        if key in seen:
            duplicates.append(
                dead_letter(event, "duplicate_event", f"same user, item, timestamp, action {key}")
            )
            continue
        seen.add(key)
        kept.append(event)

    splits = assign_splits([e["timestamp"] for e in kept], config.split, cuts)
    summary = collections.Counter({"rows_out": len(kept), "users": 1})
    if duplicates:
        summary["rows_dead_letter"] = summary["dead_letter.duplicate_event"] = len(duplicates)
    for event, split in zip(kept, splits, strict=True):
        summary[f"labels.{event['label']}"] += 1
        summary[f"actions.{event['action']}"] += 1
        summary[f"reasons.{event['reason'] or 'none'}"] += 1
        summary[f"events.{split}"] += 1
        if event["is_random"]:  # the logging columns, counted where a log carries them
            summary[f"logging.random.{split}"] += 1
        if event["propensity"] is not None:
            summary["logging.propensity"] += 1

    windows, item_counts = [], collections.Counter()
    for split in SPLITS:
        targets = [i for i, s in enumerate(splits) if s == split and i > 0]
        if splits and splits[0] == split:
            summary[f"targets_without_history.{split}"] += 1
        for start, end, covered in make_windows(targets, config.max_len):
            covered_set = set(covered)
            window_events = kept[start:end]
            windows.append(
                {
                    "user_id": user_id,
                    "split": split,
                    "events": window_events,
                    "is_target": [int(i in covered_set) for i in range(start, end)],
                }
            )
            summary[f"splits.{split}"] += 1
            for i in covered:
                summary[f"targets.{split}.{kept[i]['label']}"] += 1
                if split == "train" and kept[i]["label"] == "POSITIVE":
                    item_counts[kept[i]["item_id"]] += 1
    return windows, duplicates, summary, item_counts


class _BuildFn(beam.DoFn):
    def __init__(self, config: PreprocessConfig):
        self._config = config
        self._windows = beam.metrics.Metrics.counter("ntr.sequences", "windows")
        self._duplicates = beam.metrics.Metrics.counter("ntr.dead_letter", "duplicate_event")
        self._rows_out = beam.metrics.Metrics.counter("ntr.sequences", "rows_out")

    def process(self, keyed, cuts):
        _, batches = keyed
        by_user = collections.defaultdict(list)
        for batch in batches:
            for event in unpack_events(batch):
                by_user[event["user_id"]].append(event)
        summary, item_counts = collections.Counter(), collections.Counter()
        for user_id in sorted(by_user):
            windows, duplicates, user_summary, user_items = build_user_sequences(
                user_id, by_user[user_id], self._config, cuts
            )
            summary.update(user_summary)
            item_counts.update(user_items)
            self._windows.inc(len(windows))
            self._duplicates.inc(len(duplicates))
            for window in windows:
                yield beam.pvalue.TaggedOutput(window["split"], window)
            for record in duplicates:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, record)
        self._rows_out.inc(summary["rows_out"])
        yield beam.pvalue.TaggedOutput(SUMMARY_TAG, summary)
        if item_counts:
            yield beam.pvalue.TaggedOutput(ITEM_COUNT_TAG, item_counts)


class BuildSequences(beam.PTransform):
    """Bucketed event lists -> windows per split, duplicate dead letters, summaries, item counts.

    Input: `(key, [packed labelled events])` pairs (`prepare.pack_event`), any number per key,
    where every event of a user carries the same key (`PrepareEvents` keys by user bucket;
    keying by user id works too).
    Output tags: `train`, `valid`, `test` (windows), `dead_letter`, `summary` (one Counter per
    key, duplicates counted as dead letters), `item_counts` (one Counter of positive train
    targets per item, per key).
    """

    def __init__(self, config: PreprocessConfig, cuts=None, label=None):
        """Args: cuts: a singleton PCollection of the global time cuts, or None."""
        super().__init__(label)
        self._config = config
        self._cuts = cuts

    def expand(self, user_events):
        cuts = beam.pvalue.AsSingleton(self._cuts) if self._cuts is not None else None
        return (
            user_events
            | "GroupByBucket" >> beam.GroupByKey()
            | "Build"
            >> beam.ParDo(_BuildFn(self._config), cuts).with_outputs(
                *SPLITS, DEAD_LETTER_TAG, SUMMARY_TAG, ITEM_COUNT_TAG
            )
        )


def time_cuts(split: SplitConfig, timestamps) -> beam.PCollection | None:
    """The global time cuts as a singleton PCollection (None in `last_events` mode).

    `timestamps` holds lists of event times (`PrepareEvents`' `timestamps` output).

    Explicit `valid_start`/`test_start` win; missing ones are the configured quantiles of all
    event timestamps (Beam's approximate quantiles, exact at these sizes).
    """
    if split.mode != "global_time":
        return None

    def to_cuts(quantiles):
        def at(q):
            return quantiles[round(q * (len(quantiles) - 1))]

        valid = split.valid_start if split.valid_start is not None else at(split.valid_quantile)
        test = split.test_start if split.test_start is not None else at(split.test_quantile)
        return {"valid_start": int(valid), "test_start": int(max(valid, test))}

    return (
        timestamps
        | "Quantiles" >> beam.ApproximateQuantiles.Globally(1001, input_batched=True)
        | "ToCuts" >> beam.Map(to_cuts)
    )
