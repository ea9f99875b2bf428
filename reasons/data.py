"""Training examples for the reason model: features and labels per exposure.

Read from WORKDIR/raw (events.jsonl, items.jsonl). Each example is one exposure: its features
(`reasons.features`) describe the user's history *before* it (last `history_len` events), the
item shown and their relation; the labels say whether it was a negative (explicit or skip) and
why. Two reason columns keep what a model may learn from apart from what it is judged
against: `reason` is what the log states (explicit dislikes with their `reason` filled in;
skips never have one), the only label that training reads; `true_reason` is the world's
hidden cause of any negative when the log has one (the synthetic world), else the logged
reason, and only evaluation reads it. Users are split into train and held-out test by a
seeded permutation.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import defaultdict

import numpy as np

from ntr.pipelines.events import REASONS, Label, LabelConfig, label_event
from ntr.reasons.features import FEATURE_DIM, FeatureConfig, features_at

# The raw counts the heuristic baseline reads (`Examples.counts`).
RULE_FIELDS = ("creator_dislikes", "creator_likes", "topic_dislikes", "topic_likes", "repeats")

NO_REASON = -1


@dataclasses.dataclass(frozen=True)
class ReasonDataConfig:
    """Attributes:
    holdout_share: share of users held out for testing.
    valid_share: share of users taken from the training side for validation (the serving
      threshold of predicted group reasons is chosen there, on their explicit dislikes only;
      0 = no validation split).
    history_len: events before the exposure that the features describe.
    max_explicit / max_skips / max_others: examples kept per split and kind (sampled).
    seed: user split and sampling.
    """

    holdout_share: float = 0.2
    valid_share: float = 0.1
    history_len: int = 100
    max_explicit: int = 5000
    max_skips: int = 3000
    max_others: int = 3000
    seed: int = 0


@dataclasses.dataclass
class Examples:
    """Parallel lists/arrays, one entry per exposure.

    Attributes:
      features: [n, FEATURE_DIM] float32 model inputs (`reasons.features.exposure_features`).
      negative: [n] bool, explicit negative or skip.
      explicit: [n] bool, explicit negative.
      reason: [n] int index into REASONS of the logged reason (the training label), NO_REASON
        when the log states none (skips, dislikes without a reason, non-negatives).
      true_reason: [n] int index into REASONS of the true cause of a negative (the evaluation
        truth), NO_REASON when unknown or not a negative.
      counts: [n, len(RULE_FIELDS)] int raw counts (for the heuristic baseline).
      user: user ids.
    """

    features: np.ndarray
    negative: np.ndarray
    explicit: np.ndarray
    reason: np.ndarray
    true_reason: np.ndarray
    counts: np.ndarray
    user: list[str]

    def __len__(self) -> int:
        return len(self.user)


def load_items(path: str) -> dict[str, dict]:
    """items.jsonl (item_id, creator_id, categories, text, duration_ms) by item id."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: the reason model describes items from the catalogue; pass the "
            "items.jsonl the model was trained on (WORKDIR/raw/items.jsonl; `ntr serve --items`)."
        )
    with open(path, encoding="utf-8") as handle:
        return {row["item_id"]: row for row in map(json.loads, handle)}


def load_raw(raw_dir: str) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """Events per user (time-ordered) and the catalogue by item id."""
    items = load_items(os.path.join(raw_dir, "items.jsonl"))
    users = defaultdict(list)
    with open(os.path.join(raw_dir, "events.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            users[row["user_id"]].append(row)
    for events in users.values():
        events.sort(key=lambda e: e["timestamp"])
    return dict(users), items


def split_users(users: list[str], holdout_share: float, seed: int) -> tuple[set[str], set[str]]:
    """(train, test) user sets from a seeded permutation of the sorted ids (no hash())."""
    order = np.random.default_rng(seed).permutation(sorted(users))
    cut = int(round(len(order) * (1 - holdout_share)))
    return set(order[:cut].tolist()), set(order[cut:].tolist())


def build_examples(
    events_by_user: dict[str, list[dict]],
    items: dict[str, dict],
    vectors,
    config: ReasonDataConfig | None = None,
) -> dict[str, Examples]:
    """{"train", "valid", "test"}: Examples (valid is empty when valid_share is 0).

    Args:
      events_by_user / items: `load_raw`'s output.
      vectors: item id -> catalogue vector (`reasons.catalogue.ItemVectors`).
      config: split shares, history length, sample sizes and seed.
    """
    config = config or ReasonDataConfig()
    train_users, test_users = split_users(list(events_by_user), config.holdout_share, config.seed)
    # Validation users come out of the training side, so the test users stay those of a run
    # without validation (figures stay comparable).
    inner_share = config.valid_share / (1 - config.holdout_share) if config.valid_share else 0.0
    train_users, valid_users = split_users(list(train_users), inner_share, config.seed + 2)
    label_config, feature_config = LabelConfig(), FeatureConfig()
    out = {}
    for number, (split, users) in enumerate(
        (("train", train_users), ("valid", valid_users), ("test", test_users))
    ):
        # One generator per split: a split's sample does not depend on the sizes of the others.
        rng = np.random.default_rng([config.seed + 1, number])
        kinds = {"explicit": [], "skip": [], "other": []}
        for user in sorted(users):
            for k, event in enumerate(events_by_user[user]):
                if event["item_id"] not in items or k == 0:
                    continue
                label, _ = label_event(
                    event["action"], event.get("watch_ms"), event.get("duration_ms"), label_config
                )
                kind = {Label.EXPLICIT_NEGATIVE: "explicit", Label.IMPLICIT_NEGATIVE: "skip"}.get(
                    label, "other"
                )
                kinds[kind].append((user, k))
        caps = {"explicit": config.max_explicit, "skip": config.max_skips, "other": config.max_others}
        if split == "valid":
            # Validation only chooses the group-removal threshold, on explicit dislikes.
            caps.update(skip=0, other=0)
        chosen = []
        for kind, entries in kinds.items():
            if len(entries) > caps[kind]:
                entries = [entries[i] for i in sorted(rng.choice(len(entries), caps[kind], replace=False))]
            chosen += [(kind, user, k) for user, k in entries]
        columns = defaultdict(list)
        for kind, user, k in chosen:
            event = events_by_user[user][k]
            logged = event.get("reason") if kind == "explicit" else None
            true_reason = event.get("true_reason") or logged
            features, numbers = features_at(
                events_by_user[user], k, items, vectors, config.history_len, feature_config
            )
            columns["features"].append(features)
            columns["counts"].append([numbers[f] for f in RULE_FIELDS])
            columns["negative"].append(kind != "other")
            columns["explicit"].append(kind == "explicit")
            true_reason = true_reason if kind != "other" and true_reason in REASONS else None
            columns["reason"].append(REASONS.index(logged) if logged in REASONS else NO_REASON)
            columns["true_reason"].append(REASONS.index(true_reason) if true_reason else NO_REASON)
            columns["user"].append(user)
        out[split] = Examples(
            features=np.array(columns["features"], np.float32).reshape(-1, FEATURE_DIM),
            negative=np.array(columns["negative"], bool),
            explicit=np.array(columns["explicit"], bool),
            reason=np.array(columns["reason"], np.int64),
            true_reason=np.array(columns["true_reason"], np.int64),
            counts=np.array(columns["counts"], np.int64).reshape(-1, len(RULE_FIELDS)),
            user=columns["user"],
        )
    return out
