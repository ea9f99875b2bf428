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

    def observe(self, users: np.ndarray, items: np.ndarray, labels: list[str] | np.ndarray) -> None:
        """Feedback for the items just shown ([n] each; labels are Label names)."""


class RandomPolicy:
    """Uniform over the catalogue: no exposure bias (a reference point)."""

    def __init__(self, catalogue: Catalogue, n_users: int):
        self._n_items = catalogue.n_items

    def recommend(self, users, seen, rng):
        return rng.integers(0, self._n_items, len(users))

    def observe(self, users, items, labels):
        pass


class PopularityPolicy:
    """Items drawn by popularity: strong exposure bias, no personalisation."""

    def __init__(self, catalogue: Catalogue, n_users: int):
        self._cdf = np.cumsum(catalogue.popularity)

    def recommend(self, users, seen, rng):
        return np.minimum(np.searchsorted(self._cdf, rng.random(len(users))), len(self._cdf) - 1)

    def observe(self, users, items, labels):
        pass


class MixPolicy:
    """Popularity/affinity mix with exploration (the default logging policy).

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
        primary = catalogue.categories[:, 0]
        self._by_cat = np.argsort(primary, kind="stable")
        self._cat_start = np.searchsorted(primary[self._by_cat], np.arange(catalogue.n_categories))
        self._cat_count = np.bincount(primary, minlength=catalogue.n_categories)
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
        weights = np.exp(pref - pref.max(axis=1, keepdims=True)) * (self._cat_count > 0)
        cdf = np.cumsum(weights, axis=1)
        draws = rng.random((n, c - half)) * cdf[:, -1:]
        cats = np.minimum((cdf[:, None, :] <= draws[:, :, None]).sum(axis=2), self._cat.n_categories - 1)
        within = (rng.random((n, c - half)) * self._cat_count[cats]).astype(np.int64)
        by_cat = self._by_cat[self._cat_start[cats] + within]
        cand = np.concatenate([by_pop, by_cat], axis=1)
        score = self._pop_weight * self._log_pop[cand] + self._affinity_weight * np.take_along_axis(
            pref, self._cat.categories[cand, 0], axis=1
        )
        score += self._exploration * rng.gumbel(size=score.shape)
        score[(cand[:, :, None] == seen[:, None, :]).any(axis=2)] -= 1e3
        return cand[np.arange(n), score.argmax(axis=1)]

    def observe(self, users, items, labels):
        reward = np.array([_FEEDBACK[label] for label in labels], dtype=np.float32)
        np.add.at(self._pref, (users, self._cat.categories[items, 0]), 0.3 * reward)
        self._pref[users] *= 0.995  # old feedback fades


POLICIES = {"mix": MixPolicy, "popularity": PopularityPolicy, "random": RandomPolicy}


def make_policy(name: str, catalogue: Catalogue, n_users: int) -> Policy:
    """The policy registered under `name` (see POLICIES)."""
    if name not in POLICIES:
        raise ValueError(f"Unknown policy {name!r}: choose one of {sorted(POLICIES)}.")
    return POLICIES[name](catalogue, n_users)
