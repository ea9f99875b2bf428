"""Closed loop: world users interact with a recommender for T steps (RecSim-NG shape).

Swappable parts, wired by `story`:

    user model     the world's hidden users and `respond` (simulation/response.py)
    choice model   which item of the slate the user watches (`TopChoice`: the first, as in a
                   feed; `LogitChoice`: by taste, with noise)
    recommender    any `Ranker` (a model alone, or the serving Recommender with filters)
    metrics        `LoopMetrics`: per step dislike rate, skip rate, watch time, repeated
                   dislikes of the same creator, and how many steps until a disliked creator
                   or category is shown again

All randomness comes from one explicit generator (`ClosedLoopConfig.seed`); every recommender
compared in one run meets the same users with the same draws (common random numbers).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from ntr.simulation.rankers import Ranker
from ntr.simulation.response import TRUE_REASONS, Users, respond
from ntr.simulation.world import WorldConfig, build_world, load_world_config

HISTORY_KEPT = 100  # events per user carried between steps (the model reads its max_len of them)


@dataclasses.dataclass(frozen=True)
class ClosedLoopConfig:
    """Attributes:
    num_users: world users simulated (sampled without replacement).
    steps: recommendations per user (T).
    slate_size: items recommended per step.
    choice: "top" (watch the first item) or "logit" (pick by taste).
    seed: user sampling and every draw of the loop.
    """

    num_users: int = 300
    steps: int = 30
    slate_size: int = 10
    choice: str = "top"
    seed: int = 0

    def __post_init__(self):
        if min(self.num_users, self.steps, self.slate_size) < 1:
            raise ValueError("num_users, steps and slate_size must be >= 1.")
        if self.choice not in CHOICES:
            raise ValueError(f"choice must be one of {sorted(CHOICES)}, got {self.choice!r}.")


class TopChoice:
    """The user watches the first item of the slate (a feed)."""

    def choose(
        self, users: np.ndarray, slate: np.ndarray, world: World, rng: np.random.Generator
    ) -> np.ndarray:
        return slate[:, 0]


class LogitChoice:
    """The user picks by taste: softmax over primary-category affinity (+ favourite creator)."""

    def __init__(self, temperature: float = 0.5):
        self.temperature = temperature

    def choose(
        self, users: np.ndarray, slate: np.ndarray, world: World, rng: np.random.Generator
    ) -> np.ndarray:
        cat = world.catalogue
        taste = np.take_along_axis(world.users.cat_affinity[users], cat.categories[slate][:, :, 0], 1)
        taste = taste + 1.2 * (
            world.users.fav_creators[users][:, None, :] == cat.creator[slate][:, :, None]
        ).any(-1)
        logits = taste / self.temperature
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        picks = (p.cumsum(1) < rng.random((len(users), 1))).sum(1)
        return slate[np.arange(len(users)), np.minimum(picks, slate.shape[1] - 1)]


CHOICES = {"top": TopChoice, "logit": LogitChoice}


@dataclasses.dataclass
class World:
    """The synthetic world the logs came from: config, catalogue, hidden users."""

    config: WorldConfig
    catalogue: object
    users: Users

    @classmethod
    def from_raw(cls, raw_dir: str) -> World:
        config = load_world_config(raw_dir)
        _, catalogue, users = build_world(config)
        return cls(config, catalogue, users)


def logged_histories(raw_dir: str, users: np.ndarray) -> dict[int, list[dict]]:
    """The logged events (canonical, oldest first) of world users `users` from raw/events.jsonl."""
    wanted = {f"u{u}": int(u) for u in users}
    out = {int(u): [] for u in users}
    with open(os.path.join(raw_dir, "events.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["user_id"] in wanted:
                # `true_reason` (the hidden cause of a negative) stays: no ranker reads it, and
                # the oracle arm of `reason_arms` needs it.
                out[wanted[row["user_id"]]].append(row)
    for events in out.values():
        events.sort(key=lambda e: e["timestamp"])
    return out


class LoopMetrics:
    """Per-step outcomes of one recommender; `summary()` gives means and curves."""

    def __init__(self, num_users: int, steps: int):
        shape = (steps, num_users)
        self.dislike = np.zeros(shape, bool)
        self.skip = np.zeros(shape, bool)
        self.watch_s = np.zeros(shape)
        self.repeat_creator = np.zeros(shape, bool)  # an explicit dislike of a creator disliked before
        self.disliked_creators: list[set] = [set() for _ in range(num_users)]
        # Open "until shown again" clocks: (user, step of the dislike, creator or category set).
        self._creator_open: list[tuple[int, int, int]] = []
        self._category_open: list[tuple[int, int, frozenset]] = []
        self.creator_return: list[int] = []
        self.category_return: list[int] = []

    def record(
        self,
        step: int,
        slate_creators: np.ndarray,
        slate_categories: list[list[frozenset]],
        chosen_creators: np.ndarray,
        chosen_categories: list[frozenset],
        response,
    ) -> None:
        """One step.

        Args:
          step: the step number.
          slate_creators: [n, S] creator of every slate slot.
          slate_categories: per user, per slot, the item's category set.
          chosen_creators / chosen_categories: [n] what each user watched.
          response: the users' `Response`.
        """
        # Dislikes of earlier steps whose creator / category this step's slate shows again.
        still = []
        for user, when, creator in self._creator_open:
            if creator in slate_creators[user]:
                self.creator_return.append(step - when)
            else:
                still.append((user, when, creator))
        self._creator_open = still
        still = []
        for user, when, categories in self._category_open:
            if any(categories & slot for slot in slate_categories[user]):
                self.category_return.append(step - when)
            else:
                still.append((user, when, categories))
        self._category_open = still

        self.dislike[step] = response.explicit
        self.skip[step] = response.label == "IMPLICIT_NEGATIVE"
        self.watch_s[step] = response.watch / 1000.0
        for user in np.flatnonzero(response.explicit):
            creator = int(chosen_creators[user])
            self.repeat_creator[step, user] = creator in self.disliked_creators[user]
            self.disliked_creators[user].add(creator)
            self._creator_open.append((int(user), step, creator))
            self._category_open.append((int(user), step, chosen_categories[user]))

    def summary(self) -> dict:
        """Means over users and steps (± SE over users), per-user means, per-step curves, return times.

        `per_user` keeps each user's mean over the steps, in the order of the users passed in, so
        that two recommenders run on the same users and draws can be compared user by user
        (a paired difference has a far smaller SE than the two means' SEs combined).
        """

        def over_users(values: np.ndarray) -> dict:
            per_user = values.mean(0)
            n = len(per_user)
            return {
                "mean": float(per_user.mean()),
                "se": float(per_user.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            }

        dislikes = int(self.dislike.sum())
        repeats = int(self.repeat_creator.sum())

        def returns(done: list, still_open: int) -> dict:
            total = len(done) + still_open
            return {
                "dislikes": total,
                "shown_again": len(done),
                "share_never_shown_again": (still_open / total) if total else None,
                "mean_steps_when_shown_again": float(np.mean(done)) if done else None,
            }

        return {
            "dislike_rate": over_users(self.dislike),
            "skip_rate": over_users(self.skip),
            "watch_seconds": over_users(self.watch_s),
            "repeated_creator_dislike_rate": repeats / dislikes if dislikes else None,
            "creator_shown_again": returns(self.creator_return, len(self._creator_open)),
            "category_shown_again": returns(self.category_return, len(self._category_open)),
            "per_user": {
                "dislike_rate": self.dislike.mean(0).tolist(),
                "skip_rate": self.skip.mean(0).tolist(),
                "watch_seconds": self.watch_s.mean(0).tolist(),
            },
            "curves": {
                "dislike_rate": self.dislike.mean(1).tolist(),
                "skip_rate": self.skip.mean(1).tolist(),
                "watch_seconds": self.watch_s.mean(1).tolist(),
            },
        }


def story(
    world: World,
    ranker: Ranker,
    start: dict[int, list[dict]],
    config: ClosedLoopConfig,
    progress=None,
) -> dict:
    """Runs `config.steps` steps of: recommend a slate -> user chooses -> user responds.

    Args:
      world: the users and catalogue.
      ranker: the recommender under test.
      start: world user index -> logged history the loop starts from.
      config: sizes, choice model, seed.
      progress: optional callable(step, steps).

    Returns:
      `LoopMetrics.summary()`.
    """
    rng = np.random.default_rng(config.seed)
    cat, model = world.catalogue, ranker.model
    users = np.array(sorted(start), np.int64)
    n = len(users)
    cat_index = {str(item): i for i, item in enumerate(cat.item_ids)}
    missing = [i for i in model.item_ids if i not in cat_index]
    if missing:
        raise ValueError(
            f"{len(missing)} model items (e.g. {missing[0]!r}) are not in this world's catalogue: "
            "the model was trained on other data than WORKDIR/raw."
        )
    row_to_cat = np.array([cat_index[i] for i in model.item_ids], np.int64)
    histories = [list(start[u][-HISTORY_KEPT:]) for u in users]
    seen = np.full((n, 20), -1, np.int64)
    recent_cats = np.full((n, 10), -1, np.int64)
    clock = np.zeros(n, np.int64)
    for i, events in enumerate(histories):
        shown = [cat_index[e["item_id"]] for e in events if e["item_id"] in cat_index]
        for j, item in enumerate(shown[-20:]):
            seen[i, j] = item
        for j, item in enumerate(shown[-10:]):
            recent_cats[i, j] = cat.categories[item, 0]
        clock[i] = max((e["timestamp"] for e in events), default=world.config.start_ts)
    choice = CHOICES[config.choice]()
    metrics = LoopMetrics(n, config.steps)
    category_names = [frozenset(int(c) for c in row if c >= 0) for row in cat.categories]
    reason_names = np.array(TRUE_REASONS + ("",), dtype=object)
    for step in range(config.steps):
        seeds = rng.integers(0, 2**31, n)
        slate = row_to_cat[ranker.rank(histories, config.slate_size, seeds)]
        chosen = choice.choose(users, slate, world, rng)
        response = respond(rng, world.config, world.users, cat, users, chosen, seen, recent_cats)
        metrics.record(
            step,
            cat.creator[slate],
            [[category_names[c] for c in row] for row in slate],
            cat.creator[chosen],
            [category_names[c] for c in chosen],
            response,
        )
        for i, item in enumerate(chosen):
            event = {
                "item_id": str(cat.item_ids[item]),
                "timestamp": int(clock[i]),
                "action": str(response.action[i]),
                "watch_ms": int(response.watch[i]),
                "duration_ms": int(cat.duration_ms[item]),
            }
            if response.given[i]:
                event["reason"] = str(reason_names[response.trigger[i]])
            if response.true_reason[i] < len(TRUE_REASONS):
                event["true_reason"] = str(reason_names[response.true_reason[i]])
            histories[i] = (histories[i] + [event])[-HISTORY_KEPT:]
        seen[:, step % seen.shape[1]] = chosen
        recent_cats[:, step % recent_cats.shape[1]] = cat.categories[chosen, 0]
        clock += 1 + response.watch // 1000 + rng.integers(1, 5, n)
        if progress is not None:
            progress(step + 1, config.steps)
    return metrics.summary()


def sample_users(world: World, config: ClosedLoopConfig) -> np.ndarray:
    """The world users the loop follows (same for every recommender compared)."""
    rng = np.random.default_rng(config.seed)
    n = world.config.n_users
    return np.sort(rng.choice(n, size=min(config.num_users, n), replace=False))
