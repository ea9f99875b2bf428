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
from ntr.reasons.data import load_raw
from ntr.reasons.encoder import EmbeddingCache
from ntr.reasons.model import ReasonModel
from ntr.reasons.profile import ProfileConfig, exposure_texts
from ntr.reasons.train import ReasonTrainConfig

MODEL_FILE, CONFIG_FILE = "model.pt", "config.json"


def save_reason_model(model: ReasonModel, config: ReasonTrainConfig, directory: str, extra: dict) -> None:
    """model.pt (weights) and config.json (training config + whatever `extra` records)."""
    os.makedirs(directory, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(directory, MODEL_FILE))
    with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as handle:
        json.dump({"train": dataclasses.asdict(config), "reasons": list(REASONS), **extra}, handle, indent=2)


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
    config = ReasonTrainConfig(**meta["train"])
    model = ReasonModel(config.hidden, config.dropout)
    model.load_state_dict(torch.load(os.path.join(directory, MODEL_FILE), weights_only=True))
    return model.eval()


def needs_reason(event: dict, config: LabelConfig) -> bool:
    """A negative (explicit or skip) whose `reason` is empty."""
    if event.get("reason"):
        return False
    label, _ = label_event(event["action"], event.get("watch_ms"), event.get("duration_ms"), config)
    return label in (Label.EXPLICIT_NEGATIVE, Label.IMPLICIT_NEGATIVE)


def label_events(
    raw_dir: str,
    model: ReasonModel,
    cache: EmbeddingCache,
    output: str,
    history_len: int = 100,
    batch_size: int = 512,
    progress=None,
) -> dict:
    """Writes `output` (JSONL): every event of raw/events.jsonl, negatives' reasons filled in.

    Returns:
      Counts: events, kept (reason from the log), filled (by the model), and per filled reason.
    """
    events_by_user, items = load_raw(raw_dir)
    label_config, profile_config = LabelConfig(), ProfileConfig()
    todo = []  # (user, position) of events to label
    for user in sorted(events_by_user):
        for k, event in enumerate(events_by_user[user]):
            if event["item_id"] in items and needs_reason(event, label_config):
                todo.append((user, k))
    # Every text describes the log as it was stated: filled reasons are applied after all
    # predictions, so no prediction reads another (and the batch size cannot change a result).
    filled = {}
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        texts = {"profile": [], "item": [], "relation": []}
        for user, k in chunk:
            exposure = exposure_texts(events_by_user[user], k, items, history_len, profile_config)
            for name in texts:
                texts[name].append(exposure[name])
        with torch.no_grad():
            tensors = [
                torch.from_numpy(cache.encode(texts[name])) for name in ("profile", "item", "relation")
            ]
            probabilities = torch.softmax(model(*tensors)[1], -1).numpy()
        for (user, k), q in zip(chunk, probabilities, strict=True):
            best = int(np.argmax(q))
            filled[user, k] = {
                "reason": REASONS[best],
                "reason_confidence": round(float(q[best]), 4),
                "reason_source": "model",
            }
        if progress is not None:
            progress(min(start + batch_size, len(todo)), len(todo))
    for (user, k), values in filled.items():
        events_by_user[user][k].update(values)
    counts = {"events": 0, "kept": 0, "filled": len(todo), "filled_reasons": {}}
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", encoding="utf-8") as handle:
        for user in sorted(events_by_user):
            for event in events_by_user[user]:
                counts["events"] += 1
                if event.get("reason") and event.get("reason_source") != "model":
                    event["reason_source"] = "log"
                    counts["kept"] += 1
                if event.get("reason_source") == "model":
                    counts["filled_reasons"][event["reason"]] = (
                        counts["filled_reasons"].get(event["reason"], 0) + 1
                    )
                handle.write(json.dumps(event, sort_keys=True) + "\n")
    return counts
