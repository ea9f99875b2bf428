"""Item stage: the catalogue (or, without one, bare items seen in the events)."""

from __future__ import annotations

import json

import apache_beam as beam

from ntr.pipelines.io import ReadRows, normalize_item
from ntr.pipelines.validate import DEAD_LETTER_TAG, dead_letter


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


def _longest_durations(events: list[dict]) -> list[tuple[str, int | None]]:
    """(item_id, longest known duration or None) for each item in one list of events."""
    longest: dict[str, int | None] = {}
    for event in events:
        known, seen = event["duration_ms"], longest.get(event["item_id"])
        longest[event["item_id"]] = known if seen is None or (known is not None and known > seen) else seen
    return list(longest.items())


def _item_from_durations(keyed):
    item_id, durations = keyed
    known = [d for d in durations if d is not None]
    return {
        "item_id": item_id,
        "creator_id": "",
        "categories": [],
        "duration_ms": max(known) if known else None,
        "text": "",
    }


class ItemsFromEvents(beam.PTransform):
    """Lists of labelled events -> bare items (no creator or categories; the longest seen
    duration). Each list is reduced to one duration per item before the shuffle."""

    def expand(self, event_lists):
        return (
            event_lists
            | "ItemDurations" >> beam.FlatMap(_longest_durations)
            | "GroupDurations" >> beam.GroupByKey()
            | "ToItem" >> beam.Map(_item_from_durations)
        )
