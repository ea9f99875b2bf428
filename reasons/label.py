"""Labelling: fill in `reason` for negatives that have none, keeping every reason the log had.

For each user (time-ordered), every explicit negative without a reason and every skip gets the
reason model's greedy reason, with `reason_confidence` (the model's probability of it) and
`reason_source` = "model". Events that already carry a reason keep it (`reason_source` =
"log"); other events pass through unchanged. The output is an events file `ntr preprocess
--events` reads (it ignores the extra columns), so `ntr_reasons` and `group_ntr` can train on
logs without explicit reasons.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import torch

from ntr.pipelines.events import REASONS, Label, LabelConfig, label_event
from ntr.reasons.catalogue import ItemVectors
from ntr.reasons.data import load_raw
from ntr.reasons.features import FEATURE_DIM, NUMERIC_FIELDS, FeatureConfig, features_at
from ntr.reasons.model import ReasonModel
from ntr.reasons.train import ReasonTrainConfig

MODEL_FILE, CONFIG_FILE = "model.pt", "config.json"


def save_reason_model(
    model: ReasonModel, config: ReasonTrainConfig, directory: str, extra: dict, vectors: ItemVectors
) -> None:
    """model.pt (weights), the catalogue vectors and config.json (training config, the feature
    layout, and whatever `extra` records)."""
    os.makedirs(directory, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(directory, MODEL_FILE))
    vectors.save(directory)
    meta = {"train": dataclasses.asdict(config), "reasons": list(REASONS), "features": list(NUMERIC_FIELDS)}
    with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as handle:
        json.dump({**meta, **extra}, handle, indent=2)


def load_reason_model(directory: str) -> ReasonModel:
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no reason model at {directory}; train one with `ntr reasons train`.")
    with open(path, encoding="utf-8") as handle:
        meta = json.load(handle)
    if meta["reasons"] != list(REASONS):
        raise ValueError(
            f"{directory} was trained for reasons {meta['reasons']}, not {list(REASONS)}; retrain it."
        )
    if meta.get("features") != list(NUMERIC_FIELDS):
        raise ValueError(
            f"{directory} was trained on other features than this version of ntr reads (an older "
            "model read MiniLM profile texts); retrain it with `ntr reasons train`."
        )
    config = ReasonTrainConfig(**meta["train"])
    model = ReasonModel(config.hidden, config.dropout, input_dim=FEATURE_DIM)
    model.load_state_dict(torch.load(os.path.join(directory, MODEL_FILE), weights_only=True))
    return model.eval()


def needs_reason(event: dict, config: LabelConfig) -> bool:
    """A negative (explicit or skip) whose `reason` is empty."""
    if event.get("reason"):
        return False
    label, _ = label_event(event["action"], event.get("watch_ms"), event.get("duration_ms"), config)
    return label in (Label.EXPLICIT_NEGATIVE, Label.IMPLICIT_NEGATIVE)


def label_user(
    events: list[dict],
    items: dict[str, dict],
    model: ReasonModel,
    vectors: ItemVectors,
    history_len: int = 100,
    batch_size: int = 512,
) -> tuple[list[dict], dict]:
    """One user's events (time-ordered) with the reasons of their negatives filled in.

    Every feature describes the log as it was stated: filled reasons are applied after all of
    the user's predictions, so no prediction reads another. Nothing depends on which other
    users are labelled with this one: the in-memory and the Beam labeller agree exactly.

    Returns:
      (events, counts): events with `reason`, `reason_source` ("log" or "model") and, for filled
      ones, `reason_confidence`; counts of events, kept, filled and filled per reason.
    """
    label_config, feature_config = LabelConfig(), FeatureConfig()
    todo = [k for k, e in enumerate(events) if e["item_id"] in items and needs_reason(e, label_config)]
    filled = {}
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        features = np.stack(
            [features_at(events, k, items, vectors, history_len, feature_config)[0] for k in chunk]
        )
        with torch.no_grad():
            probabilities = torch.softmax(model(torch.from_numpy(features))[1], -1).numpy()
        for k, q in zip(chunk, probabilities, strict=True):
            best = int(np.argmax(q))
            filled[k] = {
                "reason": REASONS[best],
                "reason_confidence": round(float(q[best]), 4),
                "reason_source": "model",
            }
    counts = {"events": len(events), "kept": 0, "filled": len(filled), "filled_reasons": {}}
    out = []
    for k, event in enumerate(events):
        event = {**event, **filled.get(k, {})}
        if event.get("reason") and k not in filled:
            event["reason_source"] = "log"
            counts["kept"] += 1
        if k in filled:
            counts["filled_reasons"][event["reason"]] = counts["filled_reasons"].get(event["reason"], 0) + 1
        out.append(event)
    return out, counts


def merge_counts(a: dict, b: dict) -> dict:
    """The sum of two `label_user` counts."""
    reasons = dict(a["filled_reasons"])
    for reason, n in b["filled_reasons"].items():
        reasons[reason] = reasons.get(reason, 0) + n
    return {**{k: a[k] + b[k] for k in ("events", "kept", "filled")}, "filled_reasons": reasons}


EMPTY_COUNTS = {"events": 0, "kept": 0, "filled": 0, "filled_reasons": {}}


def label_events(
    raw_dir: str,
    model: ReasonModel,
    vectors: ItemVectors,
    output: str,
    history_len: int = 100,
    batch_size: int = 512,
    progress=None,
) -> dict:
    """Writes `output` (JSONL): every event of raw/events.jsonl, negatives' reasons filled in.

    The in-memory labeller (the Beam one, `reasons.beam_label`, gives the same events). Users
    are written in id order, each user's events in time order. `vectors` are the catalogue
    vectors saved with the model (`ItemVectors.load`).

    Returns:
      Counts: events, kept (reason from the log), filled (by the model), and per filled reason.
    """
    events_by_user, items = load_raw(raw_dir)
    counts = dict(EMPTY_COUNTS)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", encoding="utf-8") as handle:
        for done, user in enumerate(sorted(events_by_user), 1):
            labelled, user_counts = label_user(
                events_by_user[user], items, model, vectors, history_len, batch_size
            )
            counts = merge_counts(counts, user_counts)
            handle.writelines(json.dumps(event, sort_keys=True) + "\n" for event in labelled)
            if progress is not None:
                progress(done, len(events_by_user))
    return counts
