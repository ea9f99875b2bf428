"""Item catalogues for the synthetic world: generated, or a real one (KuaiRand-Pure metadata).

A catalogue is a set of numpy arrays, one row per item; the hidden attributes (`quality`,
`offensive`) are what simulated users react to and what the true dislike reasons come from.
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np

CATEGORY_NAMES = (
    "cooking", "gaming", "music", "dance", "comedy", "pets", "travel", "fitness", "fashion",
    "beauty", "tech", "cars", "sports", "news", "science", "art", "diy", "parenting", "finance",
    "movies", "anime", "nature", "education", "food_review",
)  # fmt: skip
_ADJECTIVES = ("quick", "ultimate", "honest", "crazy", "calm", "daily", "epic", "tiny", "secret", "easy")
_NOUNS = ("guide", "challenge", "review", "story", "tips", "moments", "session", "vlog", "hacks", "test")


@dataclasses.dataclass
class Catalogue:
    """Items of the world. Arrays are indexed by item index `[n_items]` unless noted.

    Attributes:
      item_ids: string ids.
      creator: creator index per item, in [0, n_creators).
      categories: [n_items, 2] category indices, the second -1 when the item has one category.
      duration_ms: item length.
      quality: hidden quality, standard-normal-ish; clickbait items are the low tail.
      clickbait: hidden low-quality flag (true reason `quality`).
      offensive: hidden offensive flag (true reason `offensive`).
      popularity: exposure prior of the logging policy (sums to 1).
      creator_ids: [n_creators] string ids.
      category_names: [n_categories] names.
      texts: title / tags per item.
    """

    item_ids: np.ndarray
    creator: np.ndarray
    categories: np.ndarray
    duration_ms: np.ndarray
    quality: np.ndarray
    clickbait: np.ndarray
    offensive: np.ndarray
    popularity: np.ndarray
    creator_ids: np.ndarray
    category_names: tuple[str, ...]
    texts: list[str]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_creators(self) -> int:
        return len(self.creator_ids)

    @property
    def n_categories(self) -> int:
        return len(self.category_names)

    def item_rows(self):
        """Canonical item dicts (DESIGN.md "Items"), in item index order."""
        for i in range(self.n_items):
            cats = [self.category_names[c] for c in self.categories[i] if c >= 0]
            yield {
                "item_id": str(self.item_ids[i]),
                "creator_id": str(self.creator_ids[self.creator[i]]),
                "categories": cats,
                "duration_ms": int(self.duration_ms[i]),
                "text": self.texts[i],
            }


def _hidden_attributes(rng, n_items, creator, n_creators, clickbait_share, offensive_share):
    """Quality / clickbait / offensive, correlated within a creator (creators have a style)."""
    creator_quality = rng.normal(0.0, 1.0, n_creators)
    quality = 0.6 * creator_quality[creator] + 0.8 * rng.normal(0.0, 1.0, n_items)
    clickbait = quality < np.quantile(quality, clickbait_share)
    # A few creators make most offensive content.
    edgy = rng.beta(0.3, 8.0, n_creators)
    edgy *= offensive_share / max(edgy[creator].mean(), 1e-9)
    offensive = rng.random(n_items) < np.clip(edgy[creator], 0.0, 0.9)
    return quality, clickbait, offensive


def generate_catalogue(
    rng: np.random.Generator,
    n_items: int,
    n_creators: int,
    n_categories: int,
    clickbait_share: float,
    offensive_share: float,
) -> Catalogue:
    """A synthetic short-video catalogue.

    Creators have a home category (Zipf-like category sizes) and a productivity; items take
    the creator's home category (85%) and sometimes a second one; durations are log-normal
    around 30 s (5 s .. 10 min).
    """
    if n_categories > len(CATEGORY_NAMES):
        names = tuple(f"topic_{c:03d}" for c in range(n_categories))
    else:
        names = CATEGORY_NAMES[:n_categories]
    cat_weight = 1.0 / np.arange(1, n_categories + 1) ** 0.6
    home = rng.choice(n_categories, n_creators, p=cat_weight / cat_weight.sum())
    productivity = rng.lognormal(0.0, 1.0, n_creators)
    creator = rng.choice(n_creators, n_items, p=productivity / productivity.sum())
    categories = np.full((n_items, 2), -1, dtype=np.int64)
    own = rng.random(n_items) < 0.85
    categories[:, 0] = np.where(own, home[creator], rng.integers(0, n_categories, n_items))
    second = rng.integers(0, n_categories, n_items)
    categories[:, 1] = np.where((rng.random(n_items) < 0.3) & (second != categories[:, 0]), second, -1)
    duration = np.clip(rng.lognormal(np.log(30_000), 0.7, n_items), 5_000, 600_000).astype(np.int64)
    quality, clickbait, offensive = _hidden_attributes(
        rng, n_items, creator, n_creators, clickbait_share, offensive_share
    )
    creator_pop = rng.lognormal(0.0, 1.0, n_creators)
    popularity = creator_pop[creator] * rng.lognormal(0.0, 1.0, n_items) * np.exp(0.3 * quality)
    adjective = rng.integers(0, len(_ADJECTIVES), n_items)
    noun = rng.integers(0, len(_NOUNS), n_items)
    texts = [
        f"{_ADJECTIVES[adjective[i]]} {names[categories[i, 0]]} {_NOUNS[noun[i]]}"
        + (f" #{names[categories[i, 1]]}" if categories[i, 1] >= 0 else "")
        + (" you won't believe" if clickbait[i] else "")
        for i in range(n_items)
    ]
    return Catalogue(
        item_ids=np.array([f"i{i}" for i in range(n_items)]),
        creator=creator,
        categories=categories,
        duration_ms=duration,
        quality=quality,
        clickbait=clickbait,
        offensive=offensive,
        popularity=popularity / popularity.sum(),
        creator_ids=np.array([f"c{c}" for c in range(n_creators)]),
        category_names=names,
        texts=texts,
    )


KUAIRAND_META_FILE = "video_features_basic_pure.csv"


def load_kuairand_catalogue(
    path: str, rng: np.random.Generator, clickbait_share: float, offensive_share: float
) -> Catalogue:
    """A real catalogue from KuaiRand-Pure's `video_features_basic_pure.csv`.

    Real ids, authors, tags and durations; the hidden quality and offensive flags are simulated
    (the data has none). Tags become categories `tag_<id>` (first two kept).

    Args:
      path: the `kuairand_pure_meta` folder or the CSV file itself.
    """
    file = os.path.join(path, KUAIRAND_META_FILE) if os.path.isdir(path) else path
    if not os.path.exists(file):
        raise FileNotFoundError(
            f"{file} not found: pass the kuairand_pure_meta folder (with {KUAIRAND_META_FILE})."
        )
    with open(file, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    need = {"video_id", "author_id", "video_duration", "tag"}
    if not rows or not need <= set(rows[0]):
        raise ValueError(f"{file} is not KuaiRand-Pure video features: need columns {sorted(need)}.")
    tags, authors = {}, {}
    creator, categories, duration, texts, ids = [], [], [], [], []
    for row in rows:
        item_tags = [t.strip() for t in row["tag"].split(",") if t.strip()][:2] or ["none"]
        cats = [tags.setdefault(t, len(tags)) for t in item_tags]
        categories.append(cats + [-1] * (2 - len(cats)))
        creator.append(authors.setdefault(row["author_id"], len(authors)))
        seconds = float(row["video_duration"] or 0) / 1000.0
        duration.append(int(np.clip(seconds if seconds > 0 else 30.0, 1.0, 3600.0) * 1000))
        ids.append(f"k{row['video_id']}")
        texts.append(" ".join(f"tag_{t}" for t in item_tags) + f" {row.get('upload_type', '')}")
    creator = np.array(creator)
    n_items, n_creators = len(ids), len(authors)
    quality, clickbait, offensive = _hidden_attributes(
        rng, n_items, creator, n_creators, clickbait_share, offensive_share
    )
    popularity = rng.lognormal(0.0, 1.5, n_items) * np.exp(0.3 * quality)
    return Catalogue(
        item_ids=np.array(ids),
        creator=creator,
        categories=np.array(categories, dtype=np.int64),
        duration_ms=np.array(duration, dtype=np.int64),
        quality=quality,
        clickbait=clickbait,
        offensive=offensive,
        popularity=popularity / popularity.sum(),
        creator_ids=np.array([f"a{a}" for a in authors]),
        category_names=tuple(f"tag_{t}" for t in tags),
        texts=texts,
    )
