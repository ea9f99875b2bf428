"""The synthetic world: users with hidden tastes and dislike triggers, watching a feed.

Every simulated exposure yields a watch time and one action from the DESIGN vocabulary (the
strongest of what the user did). Explicit negatives carry their *true* reason; views whose
watch falls under the skip rule are implicit negatives. All randomness comes from one
`np.random.Generator` seeded from `WorldConfig.seed`, so a seed fixes the logs exactly.

Besides the canonical columns, each event has `true_reason`: the hidden cause of a negative
(explicit or skip), `null` otherwise. Readers and the pipeline ignore it; it is the ground truth
the reason model (and its benchmark) is measured against.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from ntr.pipelines.events import LabelConfig
from ntr.simulation.catalogue import Catalogue, generate_catalogue, load_kuairand_catalogue
from ntr.simulation.policies import make_policy
from ntr.simulation.response import TRUE_REASONS, Users, respond


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Sizes and behaviour of the synthetic world.

    Attributes:
      seed: the only source of randomness.
      n_users, n_items, n_creators, n_categories: sizes (a real catalogue fixes the items).
      events_per_user: mean exposures per user (log-normal, at least `min_events_per_user`).
      min_events_per_user: the fewest exposures a user has.
      session_events: mean exposures per session (sessions are separated by hours).
      start_ts: unix seconds of the first possible event.
      days: length of the period users start in.
      policy: logging policy name (`feed`, `mix`, `popularity`, `random`).
      feed_creator_share: for the `feed` policy, the share of slots that continue from the
        creator of a recently engaged item (the re-exposure rate of a disliked creator).
      aversion_persistence: probability that a hated creator or topic is felt as such on a
        given exposure (1: every later exposure meets the aversion that caused the dislike).
      hated_in_liked_share: share of hated creators drawn from the user's liked categories
        (dislikes inside topics the user watches: the confounder of a plain dislike feature).
      trigger_rate: scales every explicit-feedback probability (1.0 gives ~1.5% explicit).
      clickbait_share: share of items with hidden low quality.
      offensive_share: share of offensive items.
      reason_given_share: share of explicit negatives whose `reason` is filled in (the rest
        have `reason` null; `true_reason` is always there).
      random_share: share of exposures shown uniformly at random instead of by the policy
        (logged `is_random`, as KuaiRand's random-exposure slice): the unbiased slice offline
        evaluation reads. Drawn from a second generator, so that turning it on does not
        shift the draws of the policy and the users.
      catalogue_path: a KuaiRand-Pure metadata folder to take real items from, or "".
      skip_rule: the skip rule, used to report the skip rate and the true reason of skips
        (the pipeline applies its own, by default the same).
    """

    seed: int = 0
    n_users: int = 2000
    n_items: int = 5000
    n_creators: int = 400
    n_categories: int = 24
    events_per_user: float = 115.0
    min_events_per_user: int = 30
    session_events: float = 12.0
    start_ts: int = 1_700_000_000
    days: int = 30
    policy: str = "feed"
    feed_creator_share: float = 0.4
    aversion_persistence: float = 1.0
    hated_in_liked_share: float = 0.5
    trigger_rate: float = 1.0
    clickbait_share: float = 0.08
    offensive_share: float = 0.02
    reason_given_share: float = 1.0
    random_share: float = 0.03
    catalogue_path: str = ""
    skip_rule: LabelConfig = dataclasses.field(default_factory=LabelConfig)

    def __post_init__(self):
        if min(self.n_users, self.n_items, self.n_creators, self.n_categories) < 1:
            raise ValueError("n_users, n_items, n_creators and n_categories must be >= 1.")
        if self.events_per_user < 1 or self.min_events_per_user < 1:
            raise ValueError("events_per_user and min_events_per_user must be >= 1.")
        shares = (
            "reason_given_share",
            "aversion_persistence",
            "hated_in_liked_share",
            "feed_creator_share",
            "random_share",
        )
        for name in shares:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}.")


# Named sizes for `ntr generate --scale`; explicit flags override them.
SCALES = {
    "tiny": dict(
        n_users=60, n_items=300, n_creators=40, n_categories=8, events_per_user=40.0, min_events_per_user=25
    ),
    "default": {},
    "large": dict(
        n_users=100_000, n_items=20_000, n_creators=2_000, events_per_user=10.5, min_events_per_user=4
    ),
    # A catalogue too big for a full softmax per step on a CPU: trains on the sampled path
    # (`model.softmax="auto"` switches above 50,000 items) and gets a tree index.
    "xl": dict(
        n_users=100_000, n_items=100_000, n_creators=10_000, events_per_user=10.5, min_events_per_user=4
    ),
    # 10^6 items, ~3*10^6 events: what one 2-core machine does end to end (benchmarks.catalogue_scale).
    "xxl": dict(
        n_users=300_000, n_items=1_000_000, n_creators=100_000, events_per_user=10.5, min_events_per_user=4
    ),
}


def scaled_config(scale: str, **overrides) -> WorldConfig:
    """The WorldConfig of a named scale with explicit `overrides` applied."""
    if scale not in SCALES:
        raise ValueError(f"Unknown scale {scale!r}: choose one of {sorted(SCALES)}.")
    return WorldConfig(**{**SCALES[scale], **overrides})


def make_users(rng: np.random.Generator, config: WorldConfig, cat: Catalogue) -> Users:
    n, c = config.n_users, cat.n_categories
    cat_pop = np.bincount(cat.categories[:, 0], weights=cat.popularity, minlength=c) + 1e-9
    affinity = rng.normal(-0.6, 0.4, (n, c))
    hated = np.zeros((n, c), dtype=bool)
    liked_mask = np.zeros((n, c), dtype=bool)
    for u in range(n):  # a few draws per user; cheap even at 10^5 users
        liked = rng.choice(c, size=min(c, rng.integers(2, 5)), replace=False, p=cat_pop / cat_pop.sum())
        affinity[u, liked] = rng.uniform(0.8, 1.8, len(liked))
        liked_mask[u, liked] = True
        others = np.setdiff1d(np.arange(c), liked)
        if len(others):
            h = rng.choice(others, size=min(len(others), rng.integers(1, 3)), replace=False)
            hated[u, h] = True
            affinity[u, h] = -2.0
    pop_cdf = np.cumsum(cat.popularity)

    def popular_creators(k):
        items = np.minimum(np.searchsorted(pop_cdf, rng.random((n, k))), cat.n_items - 1)
        return cat.creator[items]

    def hated_creators(k):
        """Popular creators; a share of them drawn from the user's liked categories instead."""
        creators = popular_creators(k)
        if config.hated_in_liked_share == 0:  # no more draws: the worlds of earlier ntr versions
            return creators
        primary = cat.categories[:, 0]
        order = np.argsort(primary, kind="stable")
        bounds = np.searchsorted(primary[order], np.arange(c + 1))
        cdfs = [np.cumsum(cat.popularity[order[bounds[j] : bounds[j + 1]]]) for j in range(c)]
        inside = rng.random((n, k)) < config.hated_in_liked_share
        for u, slot in zip(*np.nonzero(inside), strict=True):
            liked = np.flatnonzero(liked_mask[u] & (cat_pop > 1e-6))
            j = liked[np.searchsorted(np.cumsum(cat_pop[liked]), rng.random() * cat_pop[liked].sum())]
            within = min(int(np.searchsorted(cdfs[j], rng.random() * cdfs[j][-1])), len(cdfs[j]) - 1)
            creators[u, slot] = cat.creator[order[bounds[j] + within]]
        return creators

    n_events = np.maximum(
        config.min_events_per_user,
        rng.lognormal(np.log(config.events_per_user) - 0.125, 0.5, n).astype(np.int64),
    )
    return Users(
        cat_affinity=affinity,
        hated_cat=hated,
        fav_creators=popular_creators(4),
        hated_creators=hated_creators(3),
        quality_sens=rng.beta(2.0, 2.0, n),
        offensive_sens=rng.beta(2.0, 3.0, n),
        repetition_tolerance=rng.integers(4, 8, n),
        feedback=rng.lognormal(0.0, 0.8, n),
        like_prop=rng.beta(2.0, 8.0, n),
        patience=rng.normal(0.0, 0.3, n),
        n_events=n_events,
    )


@dataclasses.dataclass
class WorldLog:
    """Generated events as columns ([n_events] each), plus the world that made them."""

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    action: np.ndarray  # action names
    watch_ms: np.ndarray
    reason: np.ndarray  # reason names or "" for none
    true_reason: np.ndarray  # hidden cause of negatives, "" otherwise
    label: np.ndarray  # Label names by the config's skip rule
    is_random: np.ndarray  # bool: shown uniformly at random (the random-exposure slice)
    propensity: np.ndarray  # the logging policy's probability of the shown item (nan: unknown)
    catalogue: Catalogue
    config: WorldConfig

    def __len__(self) -> int:
        return len(self.user)

    def event_rows(self):
        """Canonical event dicts (+ `true_reason`) in generation order."""
        cat = self.catalogue
        for k in range(len(self)):
            item = self.item[k]
            yield {
                "user_id": f"u{self.user[k]}",
                "item_id": str(cat.item_ids[item]),
                "timestamp": int(self.timestamp[k]),
                "action": str(self.action[k]),
                "watch_ms": int(self.watch_ms[k]),
                "duration_ms": int(cat.duration_ms[item]),
                "reason": str(self.reason[k]) or None,
                "is_random": bool(self.is_random[k]),
                "propensity": None if np.isnan(self.propensity[k]) else float(self.propensity[k]),
                "true_reason": str(self.true_reason[k]) or None,
            }

    def summary(self) -> dict:
        """Counts and rates of actions, labels and reasons (what `ntr generate` reports)."""
        n = len(self)
        labels = Counter(self.label.tolist())
        return {
            "users": int(self.config.n_users),
            "items": int(self.catalogue.n_items),
            "creators": int(self.catalogue.n_creators),
            "categories": int(self.catalogue.n_categories),
            "events": n,
            "actions": dict(sorted(Counter(self.action.tolist()).items())),
            "labels": dict(sorted(labels.items())),
            "explicit_negative_rate": labels["EXPLICIT_NEGATIVE"] / max(n, 1),
            "skip_rate": labels["IMPLICIT_NEGATIVE"] / max(n, 1),
            "positive_rate": labels["POSITIVE"] / max(n, 1),
            "reasons": dict(sorted(Counter(r for r in self.reason.tolist() if r).items())),
            "random_exposures": int(self.is_random.sum()),
            "true_reasons_of_skips": dict(
                sorted(Counter(self.true_reason[self.label == "IMPLICIT_NEGATIVE"].tolist()).items())
            ),
        }


def build_world(config: WorldConfig) -> tuple[np.random.Generator, Catalogue, Users]:
    """The world's generator, catalogue and hidden users, as `simulate` starts from them.

    The closed loop calls this with the config in raw/world.json to meet the same users again.
    """
    rng = np.random.default_rng(config.seed)
    if config.catalogue_path:
        cat = load_kuairand_catalogue(
            config.catalogue_path, rng, config.clickbait_share, config.offensive_share
        )
    else:
        cat = generate_catalogue(
            rng,
            config.n_items,
            config.n_creators,
            config.n_categories,
            config.clickbait_share,
            config.offensive_share,
        )
    return rng, cat, make_users(rng, config, cat)


def load_world_config(raw_dir: str) -> WorldConfig:
    """The WorldConfig that `ntr generate` wrote to raw/world.json."""
    path = os.path.join(raw_dir, "world.json")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: the closed loop needs a synthetic world made by `ntr generate`."
        )
    with open(path, encoding="utf-8") as handle:
        fields = json.load(handle)["config"]
    return WorldConfig(**{**fields, "skip_rule": LabelConfig(**fields["skip_rule"])})


def simulate(config: WorldConfig, progress: Callable[[int, int], None] | None = None) -> WorldLog:
    """Runs the world: every user watches the policy's feed for their number of exposures.

    Users move in lock step (one exposure per active user per step), so each step is a few
    vectorised numpy operations over all active users.

    Args:
      config: the world.
      progress: called as `progress(step, steps)` after each step.

    Returns:
      The generated log.
    """
    rng, cat, users = build_world(config)
    options = {"creator_share": config.feed_creator_share} if config.policy == "feed" else {}
    policy = make_policy(config.policy, cat, config.n_users, **options)
    n = config.n_users
    total = int(users.n_events.sum())
    out = {
        "user": np.empty(total, np.int64),
        "item": np.empty(total, np.int64),
        "timestamp": np.empty(total, np.int64),
        "action": np.empty(total, object),
        "watch_ms": np.empty(total, np.int64),
        "reason": np.empty(total, object),
        "true_reason": np.empty(total, object),
        "label": np.empty(total, object),
        "is_random": np.empty(total, bool),
        "propensity": np.empty(total, np.float64),
    }
    # The random slice has its own stream: the policy and the users draw exactly as without it.
    slice_rng = np.random.default_rng([config.seed, 1])
    clock = config.start_ts + rng.integers(0, config.days * 86_400, n)
    seen = np.full((n, 20), -1, np.int64)  # recently shown items, ring buffer
    recent_cats = np.full((n, 10), -1, np.int64)  # primary categories of the last 10 shown
    reason_names = np.array(TRUE_REASONS + ("",), dtype=object)
    steps, cursor = int(users.n_events.max()), 0
    for step in range(steps):
        active = np.flatnonzero(users.n_events > step)
        items = policy.recommend(active, seen[active], rng)
        m = len(active)
        is_random = slice_rng.random(m) < config.random_share
        items = np.where(is_random, slice_rng.integers(0, cat.n_items, m), items)
        # What was logged is the mixture of the two: P(i) = share / N + (1 - share) * policy(i).
        by_policy = policy.propensity(active, seen[active], items)
        by_policy = np.full(m, np.nan) if by_policy is None else by_policy
        propensity = config.random_share / cat.n_items + (1 - config.random_share) * by_policy
        r = respond(rng, config, users, cat, active, items, seen[active], recent_cats[active])
        cats = cat.categories[items]
        watch, action, label = r.watch, r.action, r.label

        sl = slice(cursor, cursor + m)
        out["user"][sl], out["item"][sl], out["timestamp"][sl] = active, items, clock[active]
        out["action"][sl], out["watch_ms"][sl], out["label"][sl] = action, watch, label
        out["reason"][sl] = np.where(r.given, reason_names[r.trigger], "")
        out["true_reason"][sl] = reason_names[r.true_reason]
        out["is_random"][sl], out["propensity"][sl] = is_random, propensity
        cursor += m

        policy.observe(active, items, label, action)
        seen[active, step % seen.shape[1]] = items
        recent_cats[active, step % recent_cats.shape[1]] = cats[:, 0]
        # Next exposure: after this watch and a short gap, or after a session break of hours.
        gap = 1 + watch // 1000 + rng.integers(1, 5, m)
        new_session = rng.random(m) < 1.0 / config.session_events
        gap += new_session * rng.exponential(8 * 3600, m).astype(np.int64)
        clock[active] += gap
        if progress is not None:
            progress(step + 1, steps)
    assert cursor == total
    return WorldLog(catalogue=cat, config=config, **out)


def write_world(log: WorldLog, raw_dir: str) -> dict:
    """Writes raw/events.jsonl, raw/items.jsonl and raw/world.json (config + summary).

    Returns:
      The summary dict (also in world.json).
    """
    # Imported here so that `import ntr.simulation.world` does not load Apache Beam.
    from ntr.pipelines.io import write_jsonl

    os.makedirs(raw_dir, exist_ok=True)
    start = time.perf_counter()
    n_events = write_jsonl(os.path.join(raw_dir, "events.jsonl"), log.event_rows())
    n_items = write_jsonl(os.path.join(raw_dir, "items.jsonl"), log.catalogue.item_rows())
    summary = dict(log.summary(), write_seconds=round(time.perf_counter() - start, 3))
    assert n_events == summary["events"] and n_items == summary["items"]
    with open(os.path.join(raw_dir, "world.json"), "w", encoding="utf-8") as handle:
        json.dump({"config": dataclasses.asdict(log.config), "summary": summary}, handle, indent=2)
    return summary
