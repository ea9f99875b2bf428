"""Labelling: a canonical event -> the event with a `label` (and skips recognised)."""

from __future__ import annotations

from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.events import ACTION_DEFAULT_REASON, label_event


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
