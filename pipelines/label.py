"""Labelling stage: canonical events -> events with a `label` (and skips recognised)."""

from __future__ import annotations

import apache_beam as beam

from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.events import ACTION_DEFAULT_REASON, Label, label_event


def label_one(event: dict, config: PreprocessConfig) -> dict:
    """Returns a copy of `event` with `label` (a Label name) and the effective action.

    A view judged a skip by `config.label` becomes action `skip`; with
    `config.fill_implied_reasons`, an explicit action that implies a reason gets it.
    """
    label, action = label_event(event["action"], event["watch_ms"], event["duration_ms"], config.label)
    out = dict(event, action=action, label=label.name)
    if config.fill_implied_reasons and out["reason"] is None:
        out["reason"] = ACTION_DEFAULT_REASON.get(action)
    return out


class _LabelFn(beam.DoFn):
    def __init__(self, config: PreprocessConfig):
        self._config = config
        self._counters = {
            label.name: beam.metrics.Metrics.counter("ntr.label", label.name) for label in Label
        }

    def process(self, event):
        out = label_one(event, self._config)
        self._counters[out["label"]].inc()
        yield out


class LabelEvents(beam.PTransform):
    """Canonical events -> labelled events (`label` added, skips recognised by the skip rule)."""

    def __init__(self, config: PreprocessConfig, label=None):
        super().__init__(label)
        self._config = config

    def expand(self, events):
        return events | "Label" >> beam.ParDo(_LabelFn(self._config))
