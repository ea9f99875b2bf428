"""Readers: public datasets -> canonical events and items (then the usual pipeline runs).

Each reader takes a path (the dataset's folder or its main file), checks it is the file it
expects, and yields canonical event and item dicts. Nothing is downloaded.
"""

from __future__ import annotations

import csv
import os

from ntr.pipelines.events import LabelConfig, is_skip

ML100K_RATINGS, ML100K_ITEMS, ML100K_GENRES = "u.data", "u.item", "u.genre"
KUAIRAND_FILE = "processed_standard_kcore_15.tsv"
KUAIRAND_COLUMNS = ("user_id", "video_id", "time_ms", "play_time_ms", "duration_ms", "label")


def _resolve(path: str, file_name: str, dataset: str) -> str:
    resolved = os.path.join(path, file_name) if os.path.isdir(path) else path
    if not os.path.isfile(resolved):
        raise FileNotFoundError(f"{resolved} not found: pass the {dataset} folder or its {file_name}.")
    return resolved


def movielens_rating_action(rating: int) -> str:
    """MovieLens rating -> action: <= 2 dislike, 3 a plain view (NEUTRAL), >= 4 like."""
    return "dislike" if rating <= 2 else "view" if rating == 3 else "like"


def read_movielens(path: str) -> tuple[list[dict], list[dict]]:
    """MovieLens 100K (`u.data`, `u.item`, `u.genre`) -> (events, items).

    Ratings carry no watch time, so a 3 is a NEUTRAL view; genres become categories;
    MovieLens has no creators (creator_id "").

    Raises:
      FileNotFoundError / ValueError: on a missing file or one that is not MovieLens 100K.
    """
    ratings = _resolve(path, ML100K_RATINGS, "ml-100k")
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
                    "creator_id": "",
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


SOURCES = ("ml100k", "kuairand")


def read_dataset(source: str, path: str, rule: LabelConfig) -> tuple[list[dict], list[dict]]:
    """(events, items) of a public dataset; `rule` is the pipeline's skip rule (KuaiRand)."""
    if source == "ml100k":
        return read_movielens(path)
    if source == "kuairand":
        return read_kuairand(path, rule)
    raise ValueError(f"Unknown source {source!r}: choose one of {list(SOURCES)}.")
