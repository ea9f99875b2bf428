"""Event stage: batches of raw rows -> validated, labelled events in user buckets.

One fused step instead of a Beam step per row and function: validation (`parse_event`) and
labelling (`label_one`) run in a plain loop over a batch, and the batch's events leave it as
one list per *user bucket* (a stable hash of the user id), so the shuffle that follows moves
one element per bucket and batch rather than one per event: Beam's per-element cost was most
of the pipeline's overhead over a plain loop, and logs interleave users, so grouping by user
inside a batch saves little. The sequence step regroups a bucket by user. What a
row-at-a-time pipeline counted per element (rows in, dead letters by kind) is counted here
once per batch.
"""

from __future__ import annotations

import collections
import math
import operator
import zlib

import apache_beam as beam

from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.events import EVENT_COLUMNS, LOGGING_COLUMNS, Label
from ntr.pipelines.label import label_one
from ntr.pipelines.validate import DEAD_LETTER_TAG, InvalidRow, dead_letter, parse_event

STATS_TAG = "stats"
TIMESTAMPS_TAG = "timestamps"
# Input bytes per user bucket: bounds what the sequence step holds at once (one bucket's
# events) while giving a cluster enough buckets to spread (one per 8 MiB of input).
BUCKET_BYTES = 8 << 20
MIN_BUCKETS = 16


# A labelled event crosses the shuffle as a tuple in this order: Beam's coder encodes and
# decodes a tuple of plain values in 1.3 us against 2.2 us for the same dict (no key strings).
PACKED_FIELDS = (*EVENT_COLUMNS, *LOGGING_COLUMNS, "label")


pack_event = operator.itemgetter(*PACKED_FIELDS)
"""A labelled event dict -> the tuple of its `PACKED_FIELDS` values."""


def unpack_events(packed: list[tuple]) -> list[dict]:
    """`pack_event` tuples -> labelled event dicts."""
    return [dict(zip(PACKED_FIELDS, values, strict=True)) for values in packed]


def stable_bucket(key: str, num_buckets: int) -> int:
    """The shuffle bucket of a user or item id: crc32 of the id, the same in every process
    (`hash()` is salted per process)."""
    return zlib.crc32(key.encode("utf-8")) % num_buckets


def bucket_count(input_bytes: int) -> int:
    """How many user buckets for `input_bytes` of (uncompressed) event files."""
    return max(MIN_BUCKETS, math.ceil(input_bytes / BUCKET_BYTES))


def prepare_rows(
    rows: list, config: PreprocessConfig, known_items: frozenset[str] | None = None
) -> tuple[dict[str, list[dict]], list[dict], collections.Counter]:
    """Validates and labels one batch of raw rows.

    Args:
      rows: raw rows as read (`ntr.pipelines.io`), malformed markers included.
      config: the preprocessing config (label rule, implied reasons).
      known_items: the catalogue's item ids, or None to accept any item.

    Returns:
      (labelled events by user id in row order, dead letters, counts: `rows_in`,
      `rows_dead_letter` and `dead_letter.<kind>`).
    """
    by_user: dict[str, list[dict]] = collections.defaultdict(list)
    dead, counts = [], collections.Counter(rows_in=len(rows))
    for row in rows:
        try:
            event = label_one(parse_event(row, known_items), config)
        except InvalidRow as err:
            dead.append(dead_letter(row, err.kind, str(err)))
            counts["rows_dead_letter"] += 1
            counts[f"dead_letter.{err.kind}"] += 1
            continue
        by_user[event["user_id"]].append(event)
    return dict(by_user), dead, counts


class _PrepareFn(beam.DoFn):
    def __init__(self, config: PreprocessConfig, num_buckets: int):
        self._config, self._num_buckets = config, num_buckets
        self._valid = beam.metrics.Metrics.counter("ntr.validate", "rows_valid")
        self._invalid = beam.metrics.Metrics.counter("ntr.validate", "rows_dead_letter")
        self._labels = {label.name: beam.metrics.Metrics.counter("ntr.label", label.name) for label in Label}

    def process(self, rows, known_items):
        by_user, dead, counts = prepare_rows(rows, self._config, known_items)
        self._invalid.inc(counts["rows_dead_letter"])
        self._valid.inc(counts["rows_in"] - counts["rows_dead_letter"])
        labels = collections.Counter(e["label"] for events in by_user.values() for e in events)
        for name, n in labels.items():
            self._labels[name].inc(n)
        buckets = collections.defaultdict(list)
        for user_id, events in by_user.items():
            buckets[stable_bucket(user_id, self._num_buckets)].extend(map(pack_event, events))
        yield from buckets.items()
        for record in dead:
            beam.metrics.Metrics.counter("ntr.dead_letter", record["kind"]).inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, record)
        yield beam.pvalue.TaggedOutput(STATS_TAG, counts)
        if self._config.split.mode == "global_time":  # only the global time cuts read them
            yield beam.pvalue.TaggedOutput(
                TIMESTAMPS_TAG, [e["timestamp"] for events in by_user.values() for e in events]
            )


class PrepareEvents(beam.PTransform):
    """Batches of raw rows -> (bucket, [packed labelled events]) per user bucket and batch,
    plus dead letters.

    Input: lists of raw row dicts (`ReadRowBatches`). Output tags: `events` (main; events as
    `pack_event` tuples, a user's events all in one bucket, `stable_bucket`), `dead_letter`,
    `stats` (one Counter per batch) and `timestamps` (one list per batch, in `global_time`
    split mode only: the global time cuts read them).
    """

    def __init__(
        self, config: PreprocessConfig, known_items=None, num_buckets: int = MIN_BUCKETS, label=None
    ):
        """Args:
        known_items: a singleton PCollection (or None) of the catalogue's item ids.
        num_buckets: user buckets (`bucket_count` of the input size).
        """
        super().__init__(label)
        if num_buckets < 1:
            raise ValueError(f"num_buckets={num_buckets}: need at least 1 user bucket.")
        self._config, self._num_buckets = config, num_buckets
        self._known_items = known_items

    def expand(self, batches):
        known = beam.pvalue.AsSingleton(self._known_items) if self._known_items is not None else None
        return batches | "Prepare" >> beam.ParDo(
            _PrepareFn(self._config, self._num_buckets), known
        ).with_outputs(DEAD_LETTER_TAG, STATS_TAG, TIMESTAMPS_TAG, main="events")
