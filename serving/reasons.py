"""Reasons at serve time: a negative that says nothing about why gets the reason model's guess.

`POST /v1/events` hands each explicit negative without a reason (and, with `label_skips`,
each skip) to `OnlineReasons.fill`, which builds the features `ntr reasons train` learnt from
(the item's catalogue vector, saved with the model, and numbers from the user's stored
history; no text is encoded per event) and stores the greedy reason with its probability and
`reason_source="predicted"`. Stated reasons are stored with `reason_source="stated"`.

Whether a predicted reason may remove a whole creator or category is the Recommender's call
(`RecommenderConfig.predicted_threshold`, from the reason model's validation figures).
"""

from __future__ import annotations

import json
import os

import numpy as np

from ntr.pipelines.events import (
    ACTION_DEFAULT_REASON,
    EXPLICIT_NEGATIVE_ACTIONS,
    REASONS,
    Label,
    LabelConfig,
    label_event,
)
from ntr.reasons.features import FeatureConfig, features_at
from ntr.reasons.threshold import NEVER
from ntr.serving.store import PREDICTED, STATED


def _as_stated(event: dict) -> dict:
    return {**event, "reason": None} if event.get("reason_source") == PREDICTED else event


class OnlineReasons:
    """The reason model, the catalogue and its vectors, loaded once at start-up."""

    def __init__(
        self,
        model_dir: str,
        items: dict[str, dict],
        label_skips: bool = False,
        history_len: int = 100,
        encoder=None,
        threads: int | None = 1,
    ):
        """Args:
        model_dir: `ntr reasons train`'s folder (model.pt, config.json).
        items: the catalogue by item id (`reasons.data.load_items`).
        label_skips: also predict a reason for skips (views under the skip rule).
        history_len: stored events the features describe (training used 100).
        encoder: a `TextEncoder` for catalogue items the model has no vector for (default:
          MiniLM on CPU, loaded on the first such item).
        threads: torch's intra-op threads for this process (1 leaves a core to the retriever
          in a service on 2 cores; None keeps torch's default).
        """
        import torch  # noqa: PLC0415 (torch only when reasons are served)

        from ntr.reasons.catalogue import ItemVectors  # noqa: PLC0415
        from ntr.reasons.label import CONFIG_FILE, load_reason_model  # noqa: PLC0415

        self._torch = torch
        if threads is not None:
            torch.set_num_threads(threads)
        self.model_dir = model_dir
        self.model = load_reason_model(model_dir)
        with open(os.path.join(model_dir, CONFIG_FILE), encoding="utf-8") as handle:
            self.card = json.load(handle)
        self.items = items
        self.label_skips = label_skips
        self.history_len = history_len
        self.vectors = ItemVectors.load(model_dir, items, encoder)
        self.label_config, self.feature_config = LabelConfig(), FeatureConfig()

    @property
    def threshold(self) -> float:
        """The validation-chosen confidence for group removals (NEVER for models without one)."""
        return float(self.card.get("serving", {}).get("threshold", NEVER))

    def info(self) -> dict:
        """What /v1/model says about the reason model: its held-out figures and threshold."""
        return {
            "metrics": self.card.get("metrics", {}),
            "serving": self.card.get("serving", {}),
            "label_skips": self.label_skips,
        }

    def warm_up(self) -> None:
        """A few predictions before serving: torch's first calls are slower than later ones."""
        item = next(iter(self.vectors.vectors), None) or next(iter(self.items))
        for _ in range(3):
            self.fill([], [{"item_id": item, "timestamp": 1, "action": "dislike", "reason": None}])

    def wants(self, event: dict) -> bool:
        """True for an explicit negative without a reason (and, with label_skips, a skip).

        Actions that imply their reason (hide_creator, not_interested, report) keep it.
        """
        if (
            event.get("reason")
            or event["item_id"] not in self.items
            or event["action"] in ACTION_DEFAULT_REASON
        ):
            return False
        if event["action"] in EXPLICIT_NEGATIVE_ACTIONS:
            return True
        label, _ = label_event(
            event["action"], event.get("watch_ms"), event.get("duration_ms"), self.label_config
        )
        return self.label_skips and label is Label.IMPLICIT_NEGATIVE

    def fill(self, history: list[dict], events: list[dict]) -> list[dict]:
        """Marks each event's reason source and predicts the missing reasons, in place.

        Args:
          history: the user's stored events, oldest first.
          events: the new events, oldest first; each one's features read the history and the
            new events before it.

        Returns:
          One entry per event that got a predicted reason: index, item_id, reason, confidence.
        """
        # Features describe the log as the user stated it (as in training): earlier predictions
        # are not read back as if the user had said them.
        timeline = [_as_stated(e) for e in history[-self.history_len :]]
        todo = []
        for position, event in enumerate(events):
            if event.get("reason"):
                event["reason_source"] = STATED
            elif self.wants(event):
                todo.append((position, len(timeline)))
            timeline.append(_as_stated(event))
        if not todo:
            return []
        features = np.stack(
            [
                features_at(timeline, k, self.items, self.vectors, self.history_len, self.feature_config)[0]
                for _, k in todo
            ]
        )
        torch = self._torch
        with torch.inference_mode():
            q = torch.softmax(self.model(torch.from_numpy(features))[1], -1).numpy()
        out = []
        for (position, _), row in zip(todo, q, strict=True):
            best = int(np.argmax(row))
            event = events[position]
            event.update(
                reason=REASONS[best], reason_source=PREDICTED, reason_confidence=round(float(row[best]), 4)
            )
            out.append(
                {
                    "index": position,
                    "item_id": event["item_id"],
                    "reason": event["reason"],
                    "confidence": event["reason_confidence"],
                }
            )
        return out
