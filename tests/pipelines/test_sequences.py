"""Splitting, windowing and the BuildSequences PTransform, with exact expected outputs."""

import collections

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from ntr.pipelines.config import PreprocessConfig, SplitConfig
from ntr.pipelines.prepare import pack_event
from ntr.pipelines.sequences import BuildSequences, assign_splits, build_user_sequences, make_windows
from tests.conftest import event


def labelled(user, item, ts, label="POSITIVE", action="view"):
    return dict(event(user, item, ts, action), label=label)


def test_make_windows_covers_each_target_once_with_max_history():
    # 9 events, targets 1..8, windows of 4: [5,9) covers 6,7,8; [2,6) covers 3,4,5; [0,3) covers 1,2.
    assert make_windows(list(range(1, 9)), 4) == [(0, 3, [1, 2]), (2, 6, [3, 4, 5]), (5, 9, [6, 7, 8])]
    # Test targets at the end of a long history get a full window of context.
    assert make_windows([18, 19], 5) == [(15, 20, [18, 19])]
    assert make_windows([], 5) == []


@pytest.mark.parametrize("max_len", [2, 3, 7, 50])
def test_make_windows_invariants(max_len):
    targets = [1, 2, 3, 5, 8, 13, 21, 22, 23]
    windows = make_windows(targets, max_len)
    covered = [t for _, _, c in windows for t in c]
    assert covered == targets
    for start, end, cov in windows:
        assert end - start <= max_len and all(start < t < end for t in cov)


def test_assign_splits_last_events_and_short_users():
    split = SplitConfig(mode="last_events", holdout_events=2, min_train_events=3)
    assert assign_splits(list(range(7)), split, None) == ["train"] * 3 + ["valid"] * 2 + ["test"] * 2
    assert assign_splits(list(range(6)), split, None) == ["train"] * 6  # too short to hold out


def test_assign_splits_global_time():
    split = SplitConfig(mode="global_time")
    cuts = {"valid_start": 10, "test_start": 20}
    assert assign_splits([5, 9, 10, 19, 20, 30], split, cuts) == [
        "train",
        "train",
        "valid",
        "valid",
        "test",
        "test",
    ]


def test_build_user_sequences_exact():
    config = PreprocessConfig(
        events_path="-", output_dir="-", max_len=3,
        split=SplitConfig(mode="last_events", holdout_events=1, min_train_events=2),
    )  # fmt: skip
    events = [labelled("u", f"i{t}", 100 + t) for t in range(5)]
    events[4] = labelled("u", "i4", 104, "EXPLICIT_NEGATIVE", "dislike")
    duplicate = dict(events[1])
    windows, dead, summary, counts = build_user_sequences(
        "u", [events[3], duplicate, *events[:3], events[4]], config, None
    )
    assert [(w["split"], [e["item_id"] for e in w["events"]], w["is_target"]) for w in windows] == [
        ("train", ["i0", "i1", "i2"], [0, 1, 1]),
        ("valid", ["i1", "i2", "i3"], [0, 0, 1]),
        ("test", ["i2", "i3", "i4"], [0, 0, 1]),
    ]
    assert [d["kind"] for d in dead] == ["duplicate_event"]
    assert summary["rows_out"] == 5 and summary["labels.EXPLICIT_NEGATIVE"] == 1
    assert summary["targets.test.EXPLICIT_NEGATIVE"] == 1 and summary["targets.train.POSITIVE"] == 2
    assert counts == collections.Counter({"i1": 1, "i2": 1})  # positive train targets only


def test_same_second_events_are_ordered_stably():
    config = PreprocessConfig(events_path="-", output_dir="-")
    events = [labelled("u", "b", 5), labelled("u", "a", 5), labelled("u", "c", 4)]
    windows, _, _, _ = build_user_sequences("u", events, config, None)
    assert [e["item_id"] for e in windows[0]["events"]] == ["c", "a", "b"]


def test_build_sequences_transform():
    config = PreprocessConfig(
        events_path="-", output_dir="-", max_len=10,
        split=SplitConfig(mode="last_events", holdout_events=1, min_train_events=1),
    )  # fmt: skip
    events = [labelled("u1", f"i{t}", t + 1) for t in range(3)] + [labelled("u2", "i9", 1)]
    events.append(dict(events[0]))  # duplicate
    # As PrepareEvents hands them on: packed, keyed by user bucket (here u1 and u2 share bucket
    # 0), one list per bucket and batch; u1's events arrive in two lists.
    packed = [pack_event(e) for e in events]
    user_lists = [(0, packed[:2] + [packed[3]]), (0, [packed[2], packed[4]])]
    with TestPipeline() as p:
        out = p | beam.Create(user_lists) | BuildSequences(config)

        def shape(w):
            return (w["user_id"], [e["item_id"] for e in w["events"]], w["is_target"])

        assert_that(
            out.test | "T" >> beam.Map(shape), equal_to([("u1", ["i0", "i1", "i2"], [0, 0, 1])]), label="Test"
        )
        assert_that(
            out.valid | "V" >> beam.Map(shape), equal_to([("u1", ["i0", "i1"], [0, 1])]), label="Valid"
        )
        # u1's first event has no history; u2 has one event: neither yields a train target.
        assert_that(out.train, equal_to([]), label="Train")
        assert_that(
            out.dead_letter | beam.Map(lambda d: d["kind"]), equal_to(["duplicate_event"]), label="Dead"
        )
        assert_that(
            out.summary | beam.Map(lambda c: (c["users"], c["rows_out"], c["rows_dead_letter"])),
            equal_to([(2, 4, 1)]),  # one summary per bucket
            label="Sum",
        )
