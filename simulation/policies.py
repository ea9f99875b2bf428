"""Logging policies: what the world's feed shows each user next. Swappable by name.

A policy sees only what a production recommender sees (item popularity, categories and the
logged feedback), never the users' hidden tastes, so the logs carry the exposure bias of a
real feed.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ntr.simulation.catalogue import Catalogue

# Feedback the mix policy learns from, by label (the world passes its labels in).
_FEEDBACK = {"POSITIVE": 1.0, "NEUTRAL": 0.0, "IMPLICIT_NEGATIVE": -0.3, "EXPLICIT_NEGATIVE": -2.0}


class Policy(Protocol):
    """What the world needs from a feed."""

    def recommend(self, users: np.ndarray, seen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Next item per user.

        Args:
          users: [n] user indices asking now.
          seen: [n, r] their recently shown item indices (-1 = empty slot).
          rng: the world's generator (the only source of randomness).

        Returns:
          [n] item indices.
        """

    def observe(self, users: np.ndarray, items: np.ndarray, labels: np.ndarray, actions: np.ndarray) -> None:
        """Feedback for the items just shown ([n] each; Label names and action names)."""

    def propensity(self, users: np.ndarray, seen: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """The probability that `recommend` (in its present state) returns each of `items`.

        Args:
          users, seen: as for `recommend` (called before `observe` of the same step).
          items: [n] item indices, one per user.

        Returns:
          [n] probabilities, or None where the policy has no closed form.
        """


class RandomPolicy:
    """Uniform over the catalogue: no exposure bias (a reference point)."""

    def __init__(self, catalogue: Catalogue, n_users: int):
        self._n_items = catalogue.n_items

    def recommend(self, users, seen, rng):
        return rng.integers(0, self._n_items, len(users))

    def observe(self, users, items, labels, actions):
        pass

    def propensity(self, users, seen, items):
        return np.full(len(items), 1.0 / self._n_items)


class PopularityPolicy:
    """Items drawn by popularity: strong exposure bias, no personalisation."""

    def __init__(self, catalogue: Catalogue, n_users: int):
        self._cdf = np.cumsum(catalogue.popularity)

    def recommend(self, users, seen, rng):
        return np.minimum(np.searchsorted(self._cdf, rng.random(len(users))), len(self._cdf) - 1)

    def observe(self, users, items, labels, actions):
        pass

    def propensity(self, users, seen, items):
        return _draw_probability(self._cdf, items)


class _Groups:
    """Items grouped by a key (creator or category) for uniform draws within a group."""

    def __init__(self, key: np.ndarray, n_groups: int):
        self._order = np.argsort(key, kind="stable")
        self._start = np.searchsorted(key[self._order], np.arange(n_groups))
        self.count = np.bincount(key, minlength=n_groups)  # [n_groups] items per group

    def draw(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An item uniformly within each group of `groups` (any shape); groups must be non-empty."""
        within = (rng.random(groups.shape) * self.count[groups]).astype(np.int64)
        return self._order[self._start[groups] + within]


class MixPolicy:
    """Popularity/affinity mix with exploration (the default logging policy before `feed`).

    For each user it draws `candidates` items, half by popularity and half from categories the
    user's logged feedback favours, scores them by `pop_weight * log popularity +
    affinity_weight * learned category preference`, adds Gumbel noise of scale `exploration`,
    drops recently shown items and shows the best. It learns category preferences from
    feedback, but ignores creators, as many real feeds do.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        n_users: int,
        candidates: int = 32,
        pop_weight: float = 0.5,
        affinity_weight: float = 1.0,
        exploration: float = 1.0,
    ):
        self._cat = catalogue
        self._cdf = np.cumsum(catalogue.popularity)
        self._log_pop = np.log(catalogue.popularity)
        self._pref = np.zeros((n_users, catalogue.n_categories), dtype=np.float32)
        self._by_category = _Groups(catalogue.categories[:, 0], catalogue.n_categories)
        self._candidates = candidates
        self._pop_weight = pop_weight
        self._affinity_weight = affinity_weight
        self._exploration = exploration

    def recommend(self, users, seen, rng):
        n, c = len(users), self._candidates
        half = c // 2
        by_pop = np.searchsorted(self._cdf, rng.random((n, half)))
        by_pop = np.minimum(by_pop, self._cat.n_items - 1)
        # Categories by softmax of learned preference, then an item uniformly within it.
        pref = self._pref[users]
        weights = np.exp(pref - pref.max(axis=1, keepdims=True)) * (self._by_category.count > 0)
        cdf = np.cumsum(weights, axis=1)
        draws = rng.random((n, c - half)) * cdf[:, -1:]
        cats = np.minimum((cdf[:, None, :] <= draws[:, :, None]).sum(axis=2), self._cat.n_categories - 1)
        by_cat = self._by_category.draw(cats, rng)
        cand = np.concatenate([by_pop, by_cat], axis=1)
        score = self._pop_weight * self._log_pop[cand] + self._affinity_weight * np.take_along_axis(
            pref, self._cat.categories[cand, 0], axis=1
        )
        score += self._exploration * rng.gumbel(size=score.shape)
        score[(cand[:, :, None] == seen[:, None, :]).any(axis=2)] -= 1e3
        return cand[np.arange(n), score.argmax(axis=1)]

    def observe(self, users, items, labels, actions):
        reward = np.array([_FEEDBACK[label] for label in labels], dtype=np.float32)
        np.add.at(self._pref, (users, self._cat.categories[items, 0]), 0.3 * reward)
        self._pref[users] *= 0.995  # old feedback fades

    def propensity(self, users, seen, items):
        # The winner of 32 random candidates under Gumbel noise has no closed form; an estimate
        # by re-drawing would give rare items a propensity of 0 (an infinite IPS weight).
        return None


class FeedPolicy:
    """A production-like engagement feed that does not understand dislikes (the default).

    Each slot is drawn from one of five sources: creator continuation with probability
    `creator_share`, the other four sharing the rest in proportion to their weights:

    - creator continuation: another item by the creator of a recently engaged item;
    - category continuation: another item of a recently engaged item's primary category;
    - subscriptions: an item by a creator the user follows (popularity when none);
    - popularity;
    - exploration: uniform over the catalogue.

    "Engaged" is what an engagement-optimised feed reads: every exposure that was not a fast
    skip, *and every explicit negative* (the tap on the menu, and the watch before it, count as
    interaction; the feed does not know what the button meant). So a dislike feeds the creator
    and category it disliked back into the next slots, as in the feeds users complained about
    (Mozilla's YouTube study: ~40% of recommendations still similar after a dislike). The
    first `candidates` draws not shown in the recent past compete; the first one wins.

    Args:
      catalogue / n_users: the world.
      creator_share: the probability of a creator-continuation slot (the re-exposure knob).
      category_share, follow_share, popularity_share, explore_share: weights of the other
        sources (normalised to fill 1 - creator_share).
      memory: recently engaged items remembered per user.
      recency: the chance that a continuation starts from the latest engaged item; each older
        one gets (1 - recency) times the chance of the next newer one.
      candidates: draws per slot (later ones replace recently shown ones).
    """

    def __init__(
        self,
        catalogue: Catalogue,
        n_users: int,
        creator_share: float = 0.4,
        category_share: float = 0.6,
        follow_share: float = 0.1,
        popularity_share: float = 0.2,
        explore_share: float = 0.1,
        memory: int = 10,
        recency: float = 0.6,
        candidates: int = 8,
    ):
        rest = np.array([category_share, follow_share, popularity_share, explore_share])
        if not 0.0 <= creator_share <= 1.0 or (rest < 0).any() or rest.sum() <= 0:
            raise ValueError("feed: creator_share must be in [0, 1], the other shares >= 0 and not all 0.")
        shares = np.concatenate([[creator_share], (1.0 - creator_share) * rest / rest.sum()])
        self._source_cdf = np.cumsum(shares)
        self._cat = catalogue
        self._cdf = np.cumsum(catalogue.popularity)
        self._by_creator = _Groups(catalogue.creator, catalogue.n_creators)
        self._by_category = _Groups(catalogue.categories[:, 0], catalogue.n_categories)
        self._engaged = np.full((n_users, memory), -1, np.int64)  # ring buffers of item indices
        self._engaged_next = np.zeros(n_users, np.int64)
        self._follows = np.full((n_users, 8), -1, np.int64)  # followed creators, ring buffers
        self._follows_next = np.zeros(n_users, np.int64)
        self._candidates = candidates
        self._recency = recency

    def recommend(self, users, seen, rng):
        n, c = len(users), self._candidates
        n_items = self._cat.n_items
        source = np.searchsorted(self._source_cdf, rng.random((n, c)), side="right")
        popular = np.minimum(np.searchsorted(self._cdf, rng.random((n, c))), n_items - 1)
        uniform = rng.integers(0, n_items, (n, c))
        engaged = _pick_recent(self._engaged[users], self._engaged_next[users], rng, c, self._recency)
        followed = _pick(self._follows[users], rng, c)  # [n, c] creator or -1
        by_creator = self._by_creator.draw(self._cat.creator[np.maximum(engaged, 0)], rng)
        by_category = self._by_category.draw(self._cat.categories[np.maximum(engaged, 0), 0], rng)
        by_follow = self._by_creator.draw(np.maximum(followed, 0), rng)
        cand = np.select(
            [source == 0, source == 1, source == 2, source == 3],
            [
                np.where(engaged >= 0, by_creator, popular),
                np.where(engaged >= 0, by_category, popular),
                np.where(followed >= 0, by_follow, popular),
                popular,
            ],
            uniform,
        )
        fresh = ~(cand[:, :, None] == seen[:, None, :]).any(axis=2)
        first = np.where(fresh.any(axis=1), fresh.argmax(axis=1), c - 1)
        return cand[np.arange(n), first]

    def propensity(self, users, seen, items):
        """Exact: each of the `candidates` draws comes from the same mixture q over items; the
        first draw not in `seen` is shown, else the last draw. With S = q(seen), an item not in
        `seen` is shown with q(i) (1 - S^c) / (1 - S), one in `seen` with q(i) S^(c-1)."""
        ranked = np.sort(seen, axis=1)  # each seen item's q counts once towards S
        repeat = np.zeros_like(ranked, dtype=bool)
        repeat[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
        ranked[repeat] = -1
        # One call for the seen items and the shown one: q of all of them under the same state.
        q_all = self._draw_probability(users, np.concatenate([np.maximum(ranked, 0), items[:, None]], axis=1))
        s = np.minimum(np.where(ranked >= 0, q_all[:, :-1], 0.0).sum(axis=1), 1.0)  # [n]
        q = q_all[:, -1]
        c = self._candidates
        in_seen = (seen == items[:, None]).any(axis=1)
        fresh = np.where(s < 1.0, (1.0 - s**c) / np.maximum(1.0 - s, 1e-300), float(c))
        return q * np.where(in_seen, s ** (c - 1), fresh)

    def _draw_probability(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """q: the probability that one candidate draw for each user is each item.

        Args:
          users: [n] user indices.
          items: [n, m] item indices.

        Returns:
          [n, m] probabilities.
        """
        cat = self._cat
        shares = np.diff(self._source_cdf, prepend=0.0)  # creator, category, follow, popularity, explore
        popular = _draw_probability(self._cdf, items)
        engaged = self._engaged[users]  # [n, r]
        count = np.minimum(self._engaged_next[users], engaged.shape[1])
        # The age of a continuation's starting item: geometric, capped at the oldest filled slot.
        ages = np.arange(engaged.shape[1])
        age_p = self._recency * (1.0 - self._recency) ** ages[None, :]
        capped = ages[None, :] == np.maximum(count - 1, 0)[:, None]
        age_p = np.where(capped, (1.0 - self._recency) ** ages[None, :], age_p)
        age_p = np.where(ages[None, :] < count[:, None], age_p, 0.0)  # [n, r]
        slot = (self._engaged_next[users][:, None] - 1 - ages[None, :]) % engaged.shape[1]
        start = np.maximum(np.take_along_axis(engaged, slot, axis=1), 0)  # [n, r] by age
        same_creator = cat.creator[start][:, None, :] == cat.creator[items][:, :, None]  # [n, m, r]
        by_creator = (same_creator * (age_p / self._by_creator.count[cat.creator[start]])[:, None, :]).sum(2)
        start_cat = cat.categories[start, 0]
        same_cat = start_cat[:, None, :] == cat.categories[items, 0][:, :, None]
        by_category = (same_cat * (age_p / self._by_category.count[start_cat])[:, None, :]).sum(2)
        has_engaged = (count > 0)[:, None]
        follows = self._follows[users]  # [n, 8] creators or -1
        filled = follows >= 0
        per_slot = filled / np.maximum(filled.sum(axis=1, keepdims=True), 1)
        per_slot = per_slot / np.maximum(self._by_creator.count[np.maximum(follows, 0)], 1)
        followed = follows[:, None, :] == cat.creator[items][:, :, None]
        by_follow = (followed * per_slot[:, None, :]).sum(2)
        has_follow = filled.any(axis=1)[:, None]
        return (
            shares[0] * np.where(has_engaged, by_creator, popular)
            + shares[1] * np.where(has_engaged, by_category, popular)
            + shares[2] * np.where(has_follow, by_follow, popular)
            + shares[3] * popular
            + shares[4] / cat.n_items
        )

    def observe(self, users, items, labels, actions):
        labels, actions = np.asarray(labels), np.asarray(actions)
        engaged = labels != "IMPLICIT_NEGATIVE"  # explicit negatives count, whatever the watch
        u = users[engaged]
        self._engaged[u, self._engaged_next[u] % self._engaged.shape[1]] = items[engaged]
        self._engaged_next[u] += 1
        follow = actions == "follow"
        u = users[follow]
        self._follows[u, self._follows_next[u] % self._follows.shape[1]] = self._cat.creator[items[follow]]
        self._follows_next[u] += 1


def _draw_probability(cdf: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The probability that `min(searchsorted(cdf, u), last)` with u ~ U[0, 1) is each of `items`."""
    mass = np.diff(cdf, prepend=0.0)
    mass[-1] += max(0.0, 1.0 - cdf[-1])  # draws past the last step land on the last item
    return mass[items]


def _pick_recent(
    buffers: np.ndarray, next_slot: np.ndarray, rng: np.random.Generator, c: int, recency: float
) -> np.ndarray:
    """[n, c] entries of ring buffers [n, r] (next write at `next_slot` [n]), newest favoured.

    The age of each draw is geometric with success `recency`, capped at the oldest filled slot;
    -1 where a row is empty.
    """
    r = buffers.shape[1]
    count = np.minimum(next_slot, r)
    age = np.floor(np.log1p(-rng.random((len(buffers), c))) / np.log1p(-recency)).astype(np.int64)
    age = np.minimum(age, np.maximum(count - 1, 0)[:, None])
    slot = (next_slot[:, None] - 1 - age) % r
    out = np.take_along_axis(buffers, slot, axis=1)
    return np.where(count[:, None] > 0, out, -1)


def _pick(buffers: np.ndarray, rng: np.random.Generator, c: int) -> np.ndarray:
    """[n, c] entries drawn uniformly from the filled (>= 0) slots of each row of buffers [n, r].

    -1 where a row has no filled slot.
    """
    filled = buffers >= 0
    count = filled.sum(axis=1)
    # The j-th filled slot of a row: rank draws among the filled ones, in slot order.
    rank = (rng.random((len(buffers), c)) * np.maximum(count, 1)[:, None]).astype(np.int64)
    cumulative = np.cumsum(filled, axis=1)  # [n, r]
    slot = (cumulative[:, None, :] <= rank[:, :, None]).sum(axis=2)  # [n, c]
    slot = np.minimum(slot, buffers.shape[1] - 1)
    out = np.take_along_axis(buffers, slot, axis=1)
    return np.where(count[:, None] > 0, out, -1)


POLICIES = {"feed": FeedPolicy, "mix": MixPolicy, "popularity": PopularityPolicy, "random": RandomPolicy}


def make_policy(name: str, catalogue: Catalogue, n_users: int, **options) -> Policy:
    """The policy registered under `name` (see POLICIES), with its keyword `options`."""
    if name not in POLICIES:
        raise ValueError(f"Unknown policy {name!r}: choose one of {sorted(POLICIES)}.")
    return POLICIES[name](catalogue, n_users, **options)
