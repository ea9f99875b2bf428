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


class _NormalizeFn(beam.DoFn):
    def __init__(self, num_buckets: int):
        self._num_buckets = num_buckets

    def process(self, rows):
        buckets = collections.defaultdict(list)
        for row in rows:
            try:
                item = normalize_item(row)
            except (ValueError, TypeError) as err:
                yield beam.pvalue.TaggedOutput(DEAD_LETTER_TAG, dead_letter(row, "bad_item", str(err)))
                continue
            buckets[stable_bucket(item["item_id"], self._num_buckets)].append(item)
        yield from buckets.items()


def _first_items(keyed):
    """One item per id, the first by content (the others are dead letters), sorted by id."""
    _, lists = keyed
    by_id = collections.defaultdict(list)
    for items in lists:
        for item in items:
            by_id[item["item_id"]].append(item)
    unique = []
    for item_id in sorted(by_id):
        copies = sorted(by_id[item_id], key=lambda r: json.dumps(r, sort_keys=True))
        unique.append(copies[0])
        for extra in copies[1:]:
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER_TAG, dead_letter(extra, "duplicate_item", f"item_id {item_id!r} repeated")
            )
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


def _longest_durations(events: list[dict], num_buckets: int):
    """(bucket, {item_id: longest known duration or None}) for the items of one event list."""
    longest: dict[str, int | None] = {}
    for event in events:
        known, seen = event["duration_ms"], longest.get(event["item_id"])
        longest[event["item_id"]] = known if seen is None or (known is not None and known > seen) else seen
    buckets = collections.defaultdict(dict)
    for item_id, duration in longest.items():
        buckets[stable_bucket(item_id, num_buckets)][item_id] = duration
    return list(buckets.items())


def _items_from_durations(keyed) -> list[dict]:
    _, parts = keyed
    longest: dict[str, list[int]] = collections.defaultdict(list)
    for part in parts:
        for item_id, duration in part.items():
            longest[item_id] += [] if duration is None else [duration]
    return [
        {"item_id": i, "creator_id": "", "categories": [], "duration_ms": max(d) if d else None, "text": ""}
        for i, d in sorted(longest.items())
    ]


class ItemsFromEvents(beam.PTransform):
    """Lists of labelled events -> lists of bare items (no creator or categories; the longest
    seen duration), every item id in exactly one list."""

    def __init__(self, num_buckets: int = MIN_BUCKETS, label=None):
        super().__init__(label)
        self._num_buckets = num_buckets

    def expand(self, event_lists):
        return (
            event_lists
            | "ItemDurations" >> beam.FlatMap(_longest_durations, self._num_buckets)
            | "GroupByBucket" >> beam.GroupByKey()
            | "ToItems" >> beam.Map(_items_from_durations)
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
