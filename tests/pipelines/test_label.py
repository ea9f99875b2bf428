"""Labelling literal events, alone and inside the PrepareEvents PTransform."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.events import LabelConfig
from ntr.pipelines.label import label_one
from ntr.pipelines.prepare import PrepareEvents, unpack_events
from tests.conftest import event

CONFIG = PreprocessConfig(events_path="-", output_dir="-", label=LabelConfig(skip_ms=3000, skip_ratio=0.1))


def test_labels_and_the_prepare_transform():
    events = [
        event("u", "a", 1, "view", watch=1000, duration=20_000),
        event("u", "b", 2, "view", watch=15_000, duration=20_000),
        event("u", "c", 3, "hide_creator"),
        event("u", "d", 4, "dislike", reason="quality"),
        event("u", "e", 5, "dislike"),
    ]
    expected = [
        dict(events[0], action="skip", label="IMPLICIT_NEGATIVE"),
        dict(events[1], label="POSITIVE"),
        dict(events[2], label="EXPLICIT_NEGATIVE", reason="creator"),  # implied by the action
        dict(events[3], label="EXPLICIT_NEGATIVE"),
        dict(events[4], label="EXPLICIT_NEGATIVE"),  # a plain dislike implies no reason
    ]
    assert [label_one(e, CONFIG) for e in events] == expected
    with TestPipeline() as p:
        prepared = p | beam.Create([events]) | PrepareEvents(CONFIG)
        assert_that(
            prepared.events | beam.MapTuple(lambda _, packed: unpack_events(packed)), equal_to([expected])
        )


def test_implied_reasons_can_be_turned_off():
    config = PreprocessConfig(events_path="-", output_dir="-", fill_implied_reasons=False)
    assert label_one(event("u", "c", 3, "not_interested"), config)["reason"] is None
    assert label_one(event("u", "c", 3, "not_interested"), CONFIG)["reason"] == "topic"
    # An existing reason is kept even when the action implies another.
    assert label_one(event("u", "c", 3, "hide_creator", reason="offensive"), CONFIG)["reason"] == "offensive"
