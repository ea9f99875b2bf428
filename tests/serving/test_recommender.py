"""The Recommender's filters on a real tiny export: what a dislike removes, and nothing else."""

import numpy as np
import pytest

from ntr.pipelines.events import Granularity
from ntr.retrieval.exported import ExportedModel
from ntr.serving.index import load_index
from ntr.serving.recommender import Filters, Recommender, RecommenderConfig, dislike_granularity
from ntr.serving.topk import BruteForce


@pytest.fixture(scope="module")
def model(tiny_export):
    return ExportedModel(tiny_export)


def watched(item, ts):
    return {"item_id": item, "timestamp": ts, "action": "complete", "watch_ms": 60_000, "duration_ms": 60_000}


def disliked(item, ts, action="dislike", reason=None):
    return {"item_id": item, "timestamp": ts, "action": action, "reason": reason}


def creator_with_most_items(model):
    creators = [item["creator_id"] for item in model.items]
    values, counts = np.unique(creators, return_counts=True)
    return values[np.argmax(counts)]


def everything(recommender, history, filters=None):
    """Recommend the whole catalogue, so the result shows exactly what the filters removed."""
    return {
        r["item_id"] for r in recommender.recommend(history, len(recommender.model.item_ids), filters).items
    }


@pytest.mark.parametrize(
    ("event", "want"),
    [
        ({"action": "like"}, None),
        ({"action": "skip"}, None),
        ({"action": "dislike"}, Granularity.ITEM),
        ({"action": "dislike", "reason": "creator"}, Granularity.CREATOR),
        ({"action": "dislike", "reason": "topic"}, Granularity.CATEGORY),
        ({"action": "dislike", "reason": "repetitive"}, Granularity.CATEGORY),
        ({"action": "dislike", "reason": "quality"}, Granularity.ITEM),
        ({"action": "hide_creator"}, Granularity.CREATOR),
        ({"action": "hide_creator", "reason": "quality"}, Granularity.CREATOR),
        ({"action": "not_interested"}, Granularity.CATEGORY),
        ({"action": "report"}, Granularity.ITEM),
    ],
)
def test_dislike_granularity(event, want):
    assert dislike_granularity(event) is want


def test_creator_dislike_removes_exactly_that_creator(model):
    recommender = Recommender(model, BruteForce(model.embeddings))
    creator = creator_with_most_items(model)
    target = next(item["item_id"] for item in model.items if item["creator_id"] == creator)
    others = [item["item_id"] for item in model.items[:5] if item["creator_id"] != creator][:3]
    history = [watched(i, 100 + t) for t, i in enumerate(others)] + [disliked(target, 200, reason="creator")]
    got = everything(recommender, history)
    by_creator = {item["item_id"] for item in model.items if item["creator_id"] == creator}
    assert got == set(model.item_ids) - by_creator - set(others)
    assert len(by_creator) > 1  # the test shows more than the disliked item going


def test_topic_dislike_removes_the_items_categories_only(model):
    recommender = Recommender(model, BruteForce(model.embeddings))
    target = model.items[0]
    history = [watched(model.items[1]["item_id"], 1), disliked(target["item_id"], 2, reason="topic")]
    banned = set(target["categories"])
    want = {item["item_id"] for item in model.items if not banned & set(item["categories"])} - {
        model.items[1]["item_id"]
    }
    assert banned and everything(recommender, history) == want


@pytest.mark.parametrize("reason", ["quality", "offensive", None])
def test_item_level_dislike_removes_only_the_item(model, reason):
    recommender = Recommender(model, BruteForce(model.embeddings))
    history = [watched(model.item_ids[3], 1), disliked(model.item_ids[4], 2, reason=reason)]
    assert everything(recommender, history) == set(model.item_ids) - {model.item_ids[3], model.item_ids[4]}


def test_events_may_leave_out_optional_fields(model):
    """Events from a log or a simulator often carry no `reason` key at all (not even None)."""
    recommender = Recommender(model, BruteForce(model.embeddings))
    bare = {"item_id": model.item_ids[4], "timestamp": 2, "action": "dislike"}
    assert everything(recommender, [watched(model.item_ids[3], 1), bare]) == set(model.item_ids) - {
        model.item_ids[3],
        model.item_ids[4],
    }


def test_switches_and_request_filters(model):
    config = RecommenderConfig(exclude_consumed=False, suppress_creator=False)
    recommender = Recommender(model, BruteForce(model.embeddings), config)
    target = model.items[5]
    history = [watched(model.item_ids[6], 1), disliked(target["item_id"], 2, action="hide_creator")]
    # Creator suppression off, consumed items kept: only the disliked item itself goes.
    assert everything(recommender, history) == set(model.item_ids) - {target["item_id"]}
    filters = Filters(exclude_items=frozenset({model.item_ids[7]}), exclude_creators=frozenset({"nobody"}))
    assert model.item_ids[7] not in everything(recommender, history, filters)


def test_filtered_candidates_say_why(model):
    recommender = Recommender(model, BruteForce(model.embeddings))
    target = model.items[0]
    history = [watched(model.item_ids[2], 1), disliked(target["item_id"], 2, reason="creator")]
    result = recommender.recommend(history, len(model.item_ids))
    why = {f["item_id"]: f["why"] for f in result.filtered}
    assert why[target["item_id"]] == "disliked" and why[model.item_ids[2]] == "consumed"
    same_creator = [i["item_id"] for i in model.items[1:] if i["creator_id"] == target["creator_id"]]
    assert all(why[i] == "creator_disliked" for i in same_creator if i != model.item_ids[2])
    scores = [r["score"] for r in result.items]
    assert scores == sorted(scores, reverse=True)


def test_unknown_items_are_ignored_and_reported(model):
    recommender = Recommender(model, BruteForce(model.embeddings))
    known = [watched(model.item_ids[0], 1)]
    with_unknown = known + [watched("no-such-item", 2), disliked("nope", 3)]
    a, b = recommender.recommend(known, 10), recommender.recommend(with_unknown, 10)
    assert b.ignored_items == ["no-such-item", "nope"]
    assert [r["item_id"] for r in a.items] == [r["item_id"] for r in b.items]


def test_no_usable_history_falls_back_to_popularity(model):
    recommender = Recommender(model, BruteForce(model.embeddings))
    result = recommender.recommend([watched("unknown", 1)], 5)
    assert result.cold_start
    counts = np.array([item["positives"] for item in model.items])
    want = sorted(range(len(counts)), key=lambda i: (-counts[i], i))[:5]
    assert [r["item_id"] for r in result.items] == [model.item_ids[i] for i in want]


def test_always_k_items_when_the_catalogue_has_them(model):
    recommender = Recommender(
        model, BruteForce(model.embeddings), RecommenderConfig(candidate_factor=1, min_extra=0)
    )
    history = [disliked(item["item_id"], t, reason="topic") for t, item in enumerate(model.items[:3])]
    left = everything(recommender, history)
    result = recommender.recommend(history, len(left))
    assert {r["item_id"] for r in result.items} == left
    with pytest.raises(ValueError, match="k must be in"):
        recommender.recommend(history, len(model.item_ids) + 1)


def test_scann_index_and_brute_force_give_the_same_recommendations(model, tiny_index):
    index, _ = load_index(tiny_index, model.export)
    histories = [[watched(model.item_ids[i], 1), watched(model.item_ids[i + 1], 2)] for i in range(0, 20, 2)]
    via_scann = Recommender(model, index).recommend_batch(histories, 10)
    via_numpy = Recommender(model, BruteForce(model.embeddings)).recommend_batch(histories, 10)
    for a, b in zip(via_scann, via_numpy, strict=True):
        assert [r["item_id"] for r in a.items] == [r["item_id"] for r in b.items]


class CountingBruteForce(BruteForce):
    """The exact index, counting the searches a request makes and their widths."""

    def __init__(self, embeddings):
        super().__init__(embeddings)
        self.widths = []

    def search(self, queries, k):
        self.widths.append(k)
        return super().search(queries, k)


def oracle(model, history, banned_categories, k):
    """Top k of the allowed items by exact score (ties by the smaller row), and the excluded
    items scoring at least the k-th of them, best first: a NumPy oracle of filtered retrieval."""
    query = model.encode([history])[0]
    scores = model.embeddings @ query
    consumed = {e["item_id"] for e in history}
    excluded = np.array(
        [i["item_id"] in consumed or bool(banned_categories & set(i["categories"])) for i in model.items]
    )
    order = sorted(range(len(scores)), key=lambda r: (-scores[r], r))
    allowed = [r for r in order if not excluded[r]][:k]
    above = [r for r in order if excluded[r] and scores[r] >= scores[allowed[-1]]]
    return [model.item_ids[r] for r in allowed], [model.item_ids[r] for r in above]


@pytest.mark.parametrize("exact_share", [1.0, 0.1])
def test_heavy_filters_give_the_oracles_top_k_in_few_searches(model, monkeypatch, exact_share):
    """Dislikes that exclude most of the catalogue, so the first candidates are nearly all
    removed: the result is still the exact top k of what is allowed, reached by a few wide
    searches (exact_share 1.0: the index all the way) or by scoring the catalogue once (0.1)."""
    from ntr.serving import recommender as module  # noqa: PLC0415

    monkeypatch.setattr(module, "EXACT_SHARE", exact_share)
    index = CountingBruteForce(model.embeddings)
    recommender = Recommender(model, index, RecommenderConfig(candidate_factor=1, min_extra=0))
    query = model.encode([[watched(model.item_ids[0], 1)]])[0]
    top_categories = [
        c for r in np.argsort(-(model.embeddings @ query)) for c in model.items[r]["categories"]
    ]
    banned = set(list(dict.fromkeys(top_categories))[:5])  # the 5 categories it likes best
    dislikes = [
        disliked(next(i["item_id"] for i in model.items if c in i["categories"]), 2 + t, reason="topic")
        for t, c in enumerate(sorted(banned))
    ]
    history = [watched(model.item_ids[0], 1), *dislikes]
    allowed = sum(1 for i in model.items if not banned & set(i["categories"]))
    assert allowed < len(model.items) / 2  # the filters remove most of the catalogue
    want_items, want_filtered = oracle(model, model.known(history)[0], banned, 5)
    result = recommender.recommend(history, 5)
    assert [r["item_id"] for r in result.items] == want_items
    assert [f["item_id"] for f in result.filtered] == want_filtered
    assert all(f["why"] in ("category_disliked", "consumed", "disliked") for f in result.filtered)
    if exact_share == 1.0:
        # K' = 5, then x16 (80), then at most (excluded + k): never more than three searches.
        assert index.widths[:2] == [5, 80] and len(index.widths) <= 3
    else:
        assert index.widths == [5]  # the next width passes 10% of the catalogue: scored exactly
