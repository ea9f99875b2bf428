"""Readers: public datasets -> canonical events and items (then the usual pipeline runs).

Each reader takes a path (the dataset's folder or its main file), checks it is the file it
expects, and yields canonical event and item dicts. Nothing is downloaded.
"""

from __future__ import annotations

import csv
import gzip
import os

from ntr.pipelines.events import LabelConfig, is_skip

ML100K_RATINGS, ML100K_ITEMS, ML100K_GENRES = "u.data", "u.item", "u.genre"
KUAIRAND_FILE = "processed_standard_kcore_15.tsv"
KUAIRAND_COLUMNS = ("user_id", "video_id", "time_ms", "play_time_ms", "duration_ms", "label")
ML100K_CREATORS = "ml100k_item_creators.csv"
KUAIRAND_PURE_FILE = "log_standard_20220425_20220508.csv.gz"
KUAIRAND_PURE_COLUMNS = (
    "user_id", "video_id", "time_ms", "is_like", "is_follow", "is_forward", "is_hate", "long_view",
    "play_time_ms", "duration_ms", "author_id", "tag",
)  # fmt: skip


def _resolve(path: str, file_name: str, dataset: str) -> str:
    resolved = os.path.join(path, file_name) if os.path.isdir(path) else path
    if not os.path.isfile(resolved):
        raise FileNotFoundError(f"{resolved} not found: pass the {dataset} folder or its {file_name}.")
    return resolved


def movielens_rating_action(rating: int) -> str:
    """MovieLens rating -> action: <= 2 dislike, 3 a plain view (NEUTRAL), >= 4 like."""
    return "dislike" if rating <= 2 else "view" if rating == 3 else "like"


def read_ml100k_creators(path: str) -> dict[str, str]:
    """ml-100k film -> its first director, from `ml100k_item_creators.csv` (verified rows only).

    The scrape matched some titles to the wrong film; `verified == 1` rows (scraped year within
    one year of the title's) are the trustworthy ones, so the others get no creator.
    """
    file = _resolve(path, ML100K_CREATORS, "ml-100k-directors")
    with open(file, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("movie_id", "verified", "directors") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{file} lacks columns {missing}: expected ml-100k-directors' {ML100K_CREATORS}."
            )
        return {
            row["movie_id"]: row["directors"].split("|")[0].strip()
            for row in reader
            if row["verified"] == "1" and row["directors"].strip()
        }


def read_movielens(path: str, creators: str | None = None) -> tuple[list[dict], list[dict]]:
    """MovieLens 100K (`u.data`, `u.item`, `u.genre`) -> (events, items).

    Ratings carry no watch time, so a 3 is a NEUTRAL view; genres become categories;
    MovieLens has no creators (creator_id "") unless `creators` names the ml-100k-directors
    folder or CSV: then each verified film's first director is its creator.

    Raises:
      FileNotFoundError / ValueError: on a missing file or one that is not MovieLens 100K.
    """
    ratings = _resolve(path, ML100K_RATINGS, "ml-100k")
    director = read_ml100k_creators(creators) if creators else {}
    folder = os.path.dirname(ratings)
    genres_path = _resolve(folder, ML100K_GENRES, "ml-100k")
    with open(genres_path, encoding="latin-1") as handle:
        genres = [line.split("|")[0] for line in handle if "|" in line]
    items = []
    with open(_resolve(folder, ML100K_ITEMS, "ml-100k"), encoding="latin-1") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\n").split("|")
            if len(fields) != 5 + len(genres):
                raise ValueError(
                    f"{ML100K_ITEMS} line {number} has {len(fields)} fields, expected "
                    f"{5 + len(genres)}: is this MovieLens 100K's u.item?"
                )
            cats = [g for g, flag in zip(genres, fields[5:], strict=True) if flag == "1"]
            items.append(
                {
                    "item_id": fields[0],
                    "creator_id": director.get(fields[0], ""),
                    "categories": cats,
                    "duration_ms": None,
                    "text": f"{fields[1]} | {' '.join(cats)}",
                }
            )
    events = []
    with open(ratings, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if len(fields) != 4 or not all(f.isdigit() for f in fields):
                raise ValueError(
                    f"{ratings} line {number} is {line.strip()!r}; MovieLens u.data lines are "
                    "'user item rating unix_time' (4 integers, tab-separated)."
                )
            user, item, rating, timestamp = fields
            events.append(
                {
                    "user_id": user,
                    "item_id": item,
                    "timestamp": int(timestamp),
                    "action": movielens_rating_action(int(rating)),
                    "watch_ms": None,
                    "duration_ms": None,
                    "reason": None,
                }
            )
    return events, items


def kuairand_action(label: int, play_ms: int, duration_ms: int | None, rule: LabelConfig) -> str:
    """KuaiRand like/hate row -> action: hate (0) is `dislike`; a like (1) whose play is a
    short play by the pipeline's skip rule is a `skip`, otherwise `like`."""
    if label == 0:
        return "dislike"
    return "skip" if is_skip(play_ms, duration_ms, rule) else "like"


def read_kuairand(path: str, rule: LabelConfig | None = None) -> tuple[list[dict], list[dict]]:
    """The KuaiRand-27K like/hate TSV -> (events, items).

    Timestamps come from `time_ms` (ms -> s); `duration_ms` 0 means unknown. The file has no
    item metadata, so items are bare ids with their longest seen duration.

    Args:
      path: the `kuairand27k_like_hate` folder or the TSV.
      rule: the skip rule (the pipeline's default when None).
    """
    rule = rule or LabelConfig()
    file = _resolve(path, KUAIRAND_FILE, "kuairand27k_like_hate")
    events, durations = [], {}
    with open(file, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in KUAIRAND_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{file} lacks columns {missing}: expected the tab-separated KuaiRand like/hate "
                f"file with {list(KUAIRAND_COLUMNS)}."
            )
        for row in reader:
            duration = int(row["duration_ms"]) or None
            play = int(row["play_time_ms"])
            item = row["video_id"]
            if duration:
                durations[item] = max(durations.get(item, 0), duration)
            else:
                durations.setdefault(item, 0)
            events.append(
                {
                    "user_id": row["user_id"],
                    "item_id": item,
                    "timestamp": int(row["time_ms"]) // 1000,
                    "action": kuairand_action(int(row["label"]), play, duration, rule),
                    "watch_ms": play,
                    "duration_ms": duration,
                    "reason": None,
                }
            )
    items = [
        {"item_id": item, "creator_id": "", "categories": [], "duration_ms": d or None, "text": ""}
        for item, d in sorted(durations.items())
    ]
    return events, items


def kuairand_pure_action(row: dict) -> str:
    """A KuaiRand-Pure exposure -> action, the strongest signal first: hate is `dislike`;
    follow, forward (`share`) and like are positive; otherwise a `view` with its play time
    (the pipeline's skip rule makes a short play a skip, a long one a positive)."""
    if row["is_hate"] == "1":
        return "dislike"
    if row["is_follow"] == "1":
        return "follow"
    if row["is_forward"] == "1":
        return "share"
    if row["is_like"] == "1":
        return "like"
    return "view"


def read_kuairand_pure(path: str) -> tuple[list[dict], list[dict]]:
    """The KuaiRand-Pure exposure log (with authors and tags joined) -> (events, items).

    Authors are creators and tags categories (comma-separated ids inside the field, named
    `tag_<id>`); `duration_ms` 0 means unknown. Every exposure is kept: a view whose play is
    short by the skip rule becomes a skip in the pipeline, as in any log.

    Args:
      path: the `kuairand_pure_log` folder or its .csv.gz.
    """
    file = _resolve(path, KUAIRAND_PURE_FILE, "kuairand_pure_log")
    events, meta = [], {}
    with gzip.open(file, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in KUAIRAND_PURE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{file} lacks columns {missing}: expected the KuaiRand-Pure standard log with "
                "author_id and tag joined (README: Public datasets)."
            )
        for row in reader:
            duration = int(row["duration_ms"]) or None
            item = row["video_id"]
            known = meta.setdefault(
                item,
                {
                    "item_id": item,
                    "creator_id": row["author_id"],
                    "categories": [f"tag_{t}" for t in row["tag"].split(",") if t.strip()],
                    "duration_ms": duration,
                    "text": "",
                },
            )
            if duration and not known["duration_ms"]:
                known["duration_ms"] = duration
            events.append(
                {
                    "user_id": row["user_id"],
                    "item_id": item,
                    "timestamp": int(row["time_ms"]) // 1000,
                    "action": kuairand_pure_action(row),
                    "watch_ms": int(row["play_time_ms"]),
                    "duration_ms": duration,
                    "reason": None,
                    # KuaiRand's random-exposure flag (0 throughout the standard log; 1 in
                    # its random log, which has the same columns).
                    "is_random": row["is_rand"] == "1" if "is_rand" in row else None,
                }
            )
    return events, [meta[item] for item in sorted(meta)]


SOURCES = ("ml100k", "kuairand", "kuairand_pure")


def read_dataset(
    source: str, path: str, rule: LabelConfig, creators: str | None = None
) -> tuple[list[dict], list[dict]]:
    """(events, items) of a public dataset; `rule` is the pipeline's skip rule (KuaiRand);
    `creators`: the ml-100k-directors folder or CSV for ml100k (creator = first director)."""
    if creators and source != "ml100k":
        raise ValueError("--creators is for --source ml100k (the ml-100k-directors CSV).")
    if source == "ml100k":
        return read_movielens(path, creators)
    if source == "kuairand":
        return read_kuairand(path, rule)
    if source == "kuairand_pure":
        return read_kuairand_pure(path)
    raise ValueError(f"Unknown source {source!r}: choose one of {list(SOURCES)}.")
