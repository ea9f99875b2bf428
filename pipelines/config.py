"""The preprocessing config: one typed object handed whole to every stage and written to data/."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ntr.pipelines.events import LabelConfig

SPLIT_MODES = ("last_events", "global_time")


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """How each user's time-ordered events are split into train / valid / test.

    Attributes:
      mode: `last_events`: per user, the last `holdout_events` events are test targets and the
        `holdout_events` before them valid targets; users with fewer than
        `2 * holdout_events + min_train_events` events stay wholly in train.
        `global_time`: events before `valid_start` are train, before `test_start` valid, the
        rest test; when those timestamps are None they are the `valid_quantile` /
        `test_quantile` of all event timestamps.
      holdout_events: events per user held out for valid and for test (`last_events`).
      min_train_events: train events a user keeps at least (`last_events`).
      valid_start: first valid timestamp, unix seconds (`global_time`).
      test_start: first test timestamp, unix seconds (`global_time`).
      valid_quantile: quantile of timestamps where valid starts when valid_start is None.
      test_quantile: quantile of timestamps where test starts when test_start is None.
    """

    mode: str = "last_events"
    holdout_events: int = 10
    min_train_events: int = 5
    valid_start: int | None = None
    test_start: int | None = None
    valid_quantile: float = 0.8
    test_quantile: float = 0.9

    def __post_init__(self):
        if self.mode not in SPLIT_MODES:
            raise ValueError(f"split mode {self.mode!r} is not one of {SPLIT_MODES}.")
        if self.holdout_events < 1 or self.min_train_events < 1:
            raise ValueError("holdout_events and min_train_events must be >= 1.")
        if not 0.0 < self.valid_quantile <= self.test_quantile < 1.0:
            raise ValueError("Need 0 < valid_quantile <= test_quantile < 1.")
        if (
            self.valid_start is not None
            and self.test_start is not None
            and self.valid_start > self.test_start
        ):
            raise ValueError("valid_start must not be after test_start.")


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Everything `ntr preprocess` needs.

    Attributes:
      events_path: events file or glob (.jsonl, .csv or .parquet).
      items_path: item catalogue (.jsonl, .csv or .parquet), or "" to derive bare items from
        the events. With a catalogue, events of unknown items go to the dead letters.
      output_dir: the data directory (WORKDIR/data).
      label: the skip / positive rule.
      split: the train / valid / test split.
      max_len: events per sequence window (context + targets), >= 2.
      fill_implied_reasons: give `not_interested` / `hide_creator` / `report` events without a
        reason the reason their action implies (topic / creator / offensive).
      num_shards: output shards per split; 0 lets the runner choose.
    """

    events_path: str
    output_dir: str
    items_path: str = ""
    label: LabelConfig = dataclasses.field(default_factory=LabelConfig)
    split: SplitConfig = dataclasses.field(default_factory=SplitConfig)
    max_len: int = 50
    fill_implied_reasons: bool = True
    num_shards: int = 0

    def __post_init__(self):
        if self.max_len < 2:
            raise ValueError(f"max_len must be >= 2 (one context + one target), got {self.max_len}.")
        if self.num_shards < 0:
            raise ValueError("num_shards must be >= 0.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        data = dict(data)
        data["label"] = LabelConfig(**data.get("label", {}))
        data["split"] = SplitConfig(**data.get("split", {}))
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
