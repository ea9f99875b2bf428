"""Validation: every dead-letter kind as a pure function, and the PrepareEvents PTransform."""

import zlib

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from ntr.pipelines.config import PreprocessConfig, SplitConfig
from ntr.pipelines.label import label_one
from ntr.pipelines.prepare import PrepareEvents, pack_event, stable_bucket, unpack_events
from ntr.pipelines.validate import InvalidRow, parse_event, parse_json_line
from tests.conftest import event

GOOD = {"user_id": "u1", "item_id": "i1", "timestamp": 1_600_000_000, "action": "view", "watch_ms": 5000}


def test_typed_and_string_rows_give_the_same_event():
    as_strings = {"user_id": "u1", "item_id": "i1", "timestamp": "1600000000", "action": "view",
                  "watch_ms": "5000", "duration_ms": "", "reason": "", "extra": "dropped"}  # fmt: skip
    expected = event("u1", "i1", 1_600_000_000, "view", watch=5000)
    assert parse_event(GOOD) == expected
    assert parse_event(as_strings) == expected


@pytest.mark.parametrize(
    "change, kind",
    [
        ({"user_id": None}, "missing_field"),
        ({"item_id": "  "}, "missing_field"),
        ({"timestamp": "yesterday"}, "bad_timestamp"),
        ({"timestamp": 1_600_000_000_000}, "bad_timestamp"),  # milliseconds
        ({"timestamp": -5}, "bad_timestamp"),
        ({"timestamp": 1.5}, "bad_timestamp"),
        ({"action": "love"}, "unknown_action"),
        ({"action": "dislike", "reason": "boring"}, "unknown_reason"),
        ({"watch_ms": -1}, "negative_watch_time"),
        ({"duration_ms": -10}, "negative_watch_time"),
        ({"watch_ms": "lots"}, "bad_number"),
        ({"item_id": "nope"}, "unknown_item"),
        ({"is_random": "maybe"}, "bad_number"),
        ({"is_random": 2}, "bad_number"),
        ({"propensity": 0}, "bad_number"),
        ({"propensity": "1.5"}, "bad_number"),
        ({"propensity": "nan"}, "bad_number"),
        ({"propensity": True}, "bad_number"),
    ],
)
def test_each_bad_kind(change, kind):
    with pytest.raises(InvalidRow) as err:
        parse_event(dict(GOOD, **change), known_items=frozenset({"i1"}))
    assert err.value.kind == kind


def test_logging_columns_are_optional_and_typed():
    assert parse_event(GOOD)["is_random"] is None and parse_event(GOOD)["propensity"] is None
    for raw, flag in (("1", True), ("0", False), ("true", True), ("False", False), (True, True), (0, False)):
        assert parse_event(dict(GOOD, is_random=raw))["is_random"] is flag, raw
    assert parse_event(dict(GOOD, propensity="0.25"))["propensity"] == 0.25
    assert parse_event(dict(GOOD, propensity=1))["propensity"] == 1.0


def test_malformed_json_is_marked_not_raised():
    assert parse_json_line('{"a": 1}') == {"a": 1}
    assert parse_json_line("{oops")["_error"].startswith("not valid JSON")
    assert parse_json_line("[1, 2]")["_error"] == "a JSONL line must be an object"


def test_prepare_events_transform_groups_valid_and_counts_dead():
    rows = [
        GOOD,
        dict(GOOD, action="love"),
        dict(GOOD, item_id="ghost"),
        parse_json_line("{broken"),
        dict(GOOD, user_id="u2", watch_ms=-3),
        dict(GOOD, user_id="u2", timestamp=1_600_000_001),
        dict(GOOD, timestamp=1_600_000_002, action="dislike"),
    ]
    # global_time: the only split mode whose cuts need the timestamps output.
    config = PreprocessConfig(events_path="-", output_dir="-", split=SplitConfig(mode="global_time"))
    labelled = [label_one(parse_event(r), config) for r in (rows[0], rows[5], rows[6])]
    with TestPipeline() as p:
        known = p | "Known" >> beam.Create([frozenset({"i1"})])
        # Two batches: u1's events come from both, so it leaves as two lists.
        out = p | beam.Create([rows[:4], rows[4:]]) | PrepareEvents(config, known, num_buckets=16)
        u1, u2 = stable_bucket("u1", 16), stable_bucket("u2", 16)
        assert u1 != u2  # so each batch's users leave in separate lists
        assert_that(
            out.events,
            equal_to(
                [
                    (u1, [pack_event(labelled[0])]),
                    (u2, [pack_event(labelled[1])]),
                    (u1, [pack_event(labelled[2])]),
                ]
            ),
            label="Valid",
        )
        kinds = out.dead_letter | beam.Map(lambda d: (d["kind"], d["row"]))
        assert_that(
            kinds,
            equal_to([
                ("unknown_action", rows[1]),
                ("unknown_item", rows[2]),
                ("malformed_row", "{broken"),  # the line as read, not the marker
                ("negative_watch_time", rows[4]),
            ]),
            label="Dead",
        )  # fmt: skip
        assert_that(
            out.stats | beam.Map(dict),
            equal_to([
                {"rows_in": 4, "rows_dead_letter": 3, "dead_letter.unknown_action": 1,
                 "dead_letter.unknown_item": 1, "dead_letter.malformed_row": 1},
                {"rows_in": 3, "rows_dead_letter": 1, "dead_letter.negative_watch_time": 1},
            ]),
            label="Stats",
        )  # fmt: skip
        assert_that(
            out.timestamps | beam.Map(sorted),
            equal_to([[1_600_000_000], [1_600_000_001, 1_600_000_002]]),
            label="Timestamps",
        )


def test_packing_round_trips_and_buckets_are_stable():
    labelled = label_one(parse_event(GOOD), PreprocessConfig(events_path="-", output_dir="-"))
    assert unpack_events([pack_event(labelled)]) == [labelled]
    # crc32, not the per-process salted hash(): the same bucket in every worker and every run.
    assert [stable_bucket(u, 16) for u in ("u1", "u2", "")] == [
        zlib.crc32(u.encode()) % 16 for u in ("u1", "u2", "")
    ]
