"""The skip rule and labels, at their boundaries."""

import pytest

from ntr.pipelines.events import (
    ACTIONS,
    REASON_GRANULARITY,
    REASONS,
    Granularity,
    Label,
    LabelConfig,
    is_skip,
    label_event,
)

RULE = LabelConfig(skip_ms=3000, skip_ratio=0.1, positive_ratio=0.5, positive_ms=10000)


@pytest.mark.parametrize(
    "watch, duration, expected",
    [
        (2999, 100_000, True),  # just under skip_ms
        (3000, 30_000, False),  # exactly skip_ms and exactly skip_ratio: not a skip
        (3000, 30_001, True),  # ratio just under 0.1
        (3500, None, False),  # unknown duration: only the ms rule applies
        (3500, 0, False),  # duration 0 (KuaiRand's unknown) is unknown too
        (0, 10_000, True),
        (None, 10_000, False),  # no watch info: never a skip
    ],
)
def test_skip_rule_boundaries(watch, duration, expected):
    assert is_skip(watch, duration, RULE) is expected


@pytest.mark.parametrize(
    "action, watch, duration, label, effective",
    [
        ("view", 2999, 10_000, Label.IMPLICIT_NEGATIVE, "skip"),
        ("view", 4999, 10_000, Label.NEUTRAL, "view"),  # ratio 0.4999 < positive_ratio
        ("view", 5000, 10_000, Label.POSITIVE, "view"),  # ratio exactly 0.5
        ("view", 9999, None, Label.NEUTRAL, "view"),  # unknown duration, under positive_ms
        ("view", 10000, None, Label.POSITIVE, "view"),
        ("view", None, None, Label.NEUTRAL, "view"),
        ("like", 100, 10_000, Label.POSITIVE, "like"),  # a pressed like is not overruled
        ("complete", None, None, Label.POSITIVE, "complete"),
        ("dislike", 9000, 10_000, Label.EXPLICIT_NEGATIVE, "dislike"),
        ("report", None, None, Label.EXPLICIT_NEGATIVE, "report"),
        ("skip", None, None, Label.IMPLICIT_NEGATIVE, "skip"),
    ],
)
def test_label_event(action, watch, duration, label, effective):
    assert label_event(action, watch, duration, RULE) == (label, effective)


def test_vocabularies_are_the_design_ones():
    assert set(ACTIONS) == {
        "view", "complete", "like", "share", "follow",
        "dislike", "not_interested", "hide_creator", "report", "skip",
    }  # fmt: skip
    assert REASONS == ("topic", "creator", "quality", "repetitive", "offensive", "unknown")
    assert REASON_GRANULARITY["creator"] is Granularity.CREATOR
    assert REASON_GRANULARITY["topic"] is Granularity.CATEGORY
    assert REASON_GRANULARITY["quality"] is Granularity.ITEM


def test_label_config_rejects_inverted_ratios():
    with pytest.raises(ValueError, match="skip_ratio <= positive_ratio"):
        LabelConfig(skip_ratio=0.6, positive_ratio=0.5)
