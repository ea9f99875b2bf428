"""Reasons at serve time: a reasonless dislike gets a stored predicted reason, and its group
is removed only when the prediction clears the threshold (through the real server, and in the
Recommender alone)."""

import os
import signal
import sqlite3

import httpx
import pytest

from ntr.retrieval.exported import ExportedModel
from ntr.serving.process import ServerProcess
from ntr.serving.recommender import Recommender, RecommenderConfig
from ntr.serving.topk import BruteForce
from tests.conftest import fixed_reason_model
from tests.serving.conftest import watch

CONFIDENCE = 0.8  # the test model's probability of "creator", whatever the input
CARD_THRESHOLD = 0.7


@pytest.fixture(scope="module")
def reason_dir(tmp_path_factory, tiny_data):
    """A reason model that always answers "creator" with probability 0.8."""
    items = os.path.join(os.path.dirname(tiny_data), "raw", "items.jsonl")
    return fixed_reason_model(
        str(tmp_path_factory.mktemp("reasons")), "creator", CONFIDENCE, CARD_THRESHOLD, items
    )


@pytest.fixture(scope="module")
def model(tiny_export):
    return ExportedModel(tiny_export)


def creator_items(model, creator):
    return {item["item_id"] for item in model.items if item.get("creator_id") == creator}


@pytest.mark.parametrize(("threshold", "removed"), [(0.75, True), (0.85, False)])
def test_recommender_acts_on_a_predicted_reason_only_above_the_threshold(model, threshold, removed):
    recommender = Recommender(
        model, BruteForce(model.embeddings), RecommenderConfig(predicted_threshold=threshold)
    )
    target = model.items[3]
    history = [watch(model.item_ids[0], 1)]
    history.append(
        {"item_id": target["item_id"], "timestamp": 2, "action": "dislike", "reason": "creator"}
        | {"reason_source": "predicted", "reason_confidence": CONFIDENCE}
    )
    result = recommender.recommend(history, len(model.item_ids) - 2)
    shown = {item["item_id"] for item in result.items}
    same_creator = creator_items(model, target["creator_id"]) - {target["item_id"]}
    assert same_creator, "the tiny world has creators with several items"
    assert target["item_id"] not in shown
    if removed:
        assert not same_creator & shown
        why = {f["item_id"]: f for f in result.filtered}
        entry = why[sorted(same_creator)[0]]
        assert entry["why"] == "creator_disliked_predicted" and "p=0.80" in entry["detail"]
    else:
        # Below the threshold only the item goes, and the model sees a dislike without a reason.
        assert same_creator <= shown
        stated_none = recommender.recommend([history[0], {**history[1], "reason": None}], 5)
        assert [i["item_id"] for i in recommender.recommend(history, 5).items] == [
            i["item_id"] for i in stated_none.items
        ]


def start(tiny_export, tiny_index, db, reason_dir, tiny_data, *flags):
    items = os.path.join(os.path.dirname(tiny_data), "raw", "items.jsonl")
    return ServerProcess(
        tiny_export, tiny_index, db, "--reasons", reason_dir, "--items", items, "--max-k", "500", *flags
    )


def test_a_reasonless_dislike_gets_a_stored_predicted_reason_through_the_server(
    tiny_export, tiny_index, tiny_data, reason_dir, model, tmp_path
):
    db = str(tmp_path / "events.sqlite")
    server = start(tiny_export, tiny_index, db, reason_dir, tiny_data)
    user, target = "carol", model.items[3]
    same_creator = creator_items(model, target["creator_id"]) - {target["item_id"]}
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            info = client.get("/v1/model").json()["reasons"]
            assert info["serving"]["threshold"] == CARD_THRESHOLD and info["label_skips"] is False
            events = [
                watch(model.item_ids[0], 1),
                {"item_id": target["item_id"], "timestamp": 2, "action": "dislike"},
            ]
            answer = client.post("/v1/events", json={"user_id": user, "events": events}).json()
            (predicted,) = answer["predicted_reasons"]
            assert predicted["index"] == 1 and predicted["reason"] == "creator"
            assert (
                predicted["confidence"] == pytest.approx(CONFIDENCE, abs=1e-4)
                and predicted["acts_on"] == "creator"
            )
            # A stated reason is kept as stated, and nothing is predicted for it.
            stated = {"item_id": model.item_ids[5], "timestamp": 3, "action": "dislike", "reason": "quality"}
            assert (
                client.post("/v1/events", json={"user_id": user, "events": [stated]}).json()[
                    "predicted_reasons"
                ]
                == []
            )
            k = len(model.item_ids) - 3
            after = client.post("/v1/recommend", json={"user_id": user, "k": k, "debug": True}).json()
            assert not same_creator & {i["item_id"] for i in after["items"]}
            assert {f["why"] for f in after["filtered"] if f["item_id"] in same_creator} == {
                "creator_disliked_predicted"
            }
    finally:
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT item_id, reason, reason_source, reason_confidence FROM events ORDER BY seq"
        ).fetchall()
    assert rows[1] == (target["item_id"], "creator", "predicted", pytest.approx(CONFIDENCE, abs=1e-4))
    assert rows[2][1:3] == ("quality", "stated") and rows[0][1:3] == (None, None)

    # A restart keeps the predicted reason and what it does; a stricter threshold undoes the removal.
    again = start(tiny_export, tiny_index, db, reason_dir, tiny_data)
    strict = None
    try:
        with httpx.Client(base_url=again.url, timeout=30) as client:
            after = client.post("/v1/recommend", json={"user_id": user, "k": 20, "debug": True}).json()
            assert not same_creator & {i["item_id"] for i in after["items"]}
        assert again.stop_gracefully(), again.log()
        strict = start(tiny_export, tiny_index, db, reason_dir, tiny_data, "--reason-threshold", "0.9")
        with httpx.Client(base_url=strict.url, timeout=30) as client:
            k = len(model.item_ids) - 3
            shown = {
                i["item_id"]
                for i in client.post("/v1/recommend", json={"user_id": user, "k": k}).json()["items"]
            }
            assert same_creator <= shown and target["item_id"] not in shown
            skip = {
                "item_id": model.item_ids[7],
                "timestamp": 4,
                "action": "view",
                "watch_ms": 100,
                "duration_ms": 60_000,
            }
            answer = client.post("/v1/events", json={"user_id": user, "events": [skip]}).json()
            assert answer["predicted_reasons"] == []  # skips only with --label-skips
    finally:
        if strict is not None:
            assert strict.stop_gracefully(), strict.log()


def test_serve_refuses_reason_flags_without_a_reason_model(tiny_export, tmp_path):
    with pytest.raises(RuntimeError, match="need --reasons"):
        ServerProcess(tiny_export, None, str(tmp_path / "e.sqlite"), "--label-skips")
