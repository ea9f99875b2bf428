"""Item stage: the catalogue (or, without one, bare items seen in the events) as item lists.

Items travel in lists, one per item bucket (a stable hash of the id, as users are bucketed in
`ntr.pipelines.prepare`): a catalogue of 10^5 items then costs a few dozen Beam elements
instead of 10^5 per step, and the duplicate check still sees every copy of an id together.
"""

from __future__ import annotations

import collections
import json

import apache_beam as beam

from ntr.pipelines.io import ReadRowBatches, normalize_item
from ntr.pipelines.prepare import MIN_BUCKETS, stable_bucket
from ntr.pipelines.validate import DEAD_LETTER_TAG, dead_letter


def normalize_items(rows) -> tuple[list[dict], list[dict]]:
    """Raw item rows -> (canonical items, `bad_item` dead letters for rows that are not)."""
    items, dead = [], []
    for row in rows:
        try:
            items.append(normalize_item(row))
        except (ValueError, TypeError, OverflowError, RecursionError) as err:
            dead.append(dead_letter(row, "bad_item", str(err)[:500]))
    return items, dead


class _NormalizeFn(beam.DoFn):
    def __init__(self, num_buckets: int):
        self._num_buckets = num_buckets

    def process(self, rows):
        items, dead = normalize_items(rows)
        for record in dead:
            yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, record)
        buckets = collections.defaultdict(list)
        for item in items:
            buckets[stable_bucket(item["item_id"], self._num_buckets)].append(item)
        yield from buckets.items()


def first_items(items) -> tuple[list[dict], list[dict]]:
    """One item per id, the first by content, sorted by id; every other copy of an id becomes
    a `duplicate_item` dead letter. Returns (items, dead letters)."""
    by_id = collections.defaultdict(list)
    for item in items:
        by_id[item["item_id"]].append(item)
    unique, dead = [], []
    for item_id in sorted(by_id):
        copies = sorted(by_id[item_id], key=lambda r: json.dumps(r, sort_keys=True))
        unique.append(copies[0])
        message = f"item_id {item_id!r} repeated"
        dead += [dead_letter(extra, "duplicate_item", message) for extra in copies[1:]]
    return unique, dead


def item_dead_counts(record: dict) -> collections.Counter:
    """The stats counts of one item dead letter."""
    return collections.Counter({"items_dead_letter": 1, f"dead_letter.{record['kind']}": 1})


def _first_items(keyed):
    _, lists = keyed
    unique, dead = first_items(item for items in lists for item in items)
    for record in dead:
        yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, record)
    yield unique


class ReadItems(beam.PTransform):
    """Item catalogue file -> (lists of canonical items, item dead letters: `bad_item`,
    `duplicate_item`). Every item id is in exactly one list."""

    def __init__(self, pattern: str, num_buckets: int = MIN_BUCKETS, label=None):
        super().__init__(label)
        self._pattern, self._num_buckets = pattern, num_buckets

    def expand(self, pbegin):
        normalized = (
            pbegin
            | "Read" >> ReadRowBatches(self._pattern)
            | "Normalize"
            >> beam.ParDo(_NormalizeFn(self._num_buckets)).with_outputs(DEAD_LETTER_TAG, main="items")
        )
        unique = (
            normalized.items
            | "GroupByBucket" >> beam.GroupByKey()
            | "First" >> beam.FlatMap(_first_items).with_outputs(DEAD_LETTER_TAG, main="items")
        )
        dead = (normalized.dead_letter, unique.dead_letter) | "ItemDead" >> beam.Flatten()
        return unique.items, dead


def longest_durations(events) -> dict[str, int | None]:
    """{item_id: the longest known duration among `events`, or None when none is known}."""
    longest: dict[str, int | None] = {}
    for event in events:
        known, seen = event["duration_ms"], longest.get(event["item_id"])
        longest[event["item_id"]] = known if seen is None or (known is not None and known > seen) else seen
    return longest


def bare_items(parts) -> list[dict]:
    """Bare items (no creator or categories), sorted by id, from `longest_durations` dicts:
    each item's duration is the longest over the parts."""
    longest: dict[str, list[int]] = collections.defaultdict(list)
    for part in parts:
        for item_id, duration in part.items():
            longest[item_id] += [] if duration is None else [duration]
    return [
        {"item_id": i, "creator_id": "", "categories": [], "duration_ms": max(d) if d else None, "text": ""}
        for i, d in sorted(longest.items())
    ]


def _bucketed_durations(events: list[dict], num_buckets: int):
    """(bucket, `longest_durations` of the bucket's items) for one event list."""
    buckets = collections.defaultdict(dict)
    for item_id, duration in longest_durations(events).items():
        buckets[stable_bucket(item_id, num_buckets)][item_id] = duration
    return list(buckets.items())


class ItemsFromEvents(beam.PTransform):
    """Lists of labelled events -> lists of bare items (no creator or categories; the longest
    seen duration), every item id in exactly one list."""

    def __init__(self, num_buckets: int = MIN_BUCKETS, label=None):
        super().__init__(label)
        self._num_buckets = num_buckets

    def expand(self, event_lists):
        return (
            event_lists
            | "ItemDurations" >> beam.FlatMap(_bucketed_durations, self._num_buckets)
            | "GroupByBucket" >> beam.GroupByKey()
            | "ToItems" >> beam.MapTuple(lambda _, parts: bare_items(parts))
        )


class CatalogueFn(beam.CombineFn):
    """Item lists -> `{"items": [...], "creators": [...], "categories": [...]}`, each the sorted
    distinct ids (the vocabularies, and the known-item set of validation)."""

    def create_accumulator(self):
        return set(), set(), set()

    def add_input(self, acc, items):
        ids, creators, categories = acc
        for item in items:
            ids.add(item["item_id"])
            if item["creator_id"]:
                creators.add(item["creator_id"])
            categories.update(item["categories"])
        return acc

    def merge_accumulators(self, accs):
        merged = self.create_accumulator()
        for acc in accs:
            for into, part in zip(merged, acc, strict=True):
                into.update(part)
        return merged

    def extract_output(self, acc):
        return {
            name: sorted(part) for name, part in zip(("items", "creators", "categories"), acc, strict=True)
        }
