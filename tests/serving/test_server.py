"""The HTTP service, started as `ntr serve` on a loopback port and exercised with real requests."""

import json
import signal
import sqlite3

import httpx
import pytest

from ntr.retrieval.data import read_histories
from ntr.retrieval.exported import ExportedModel
from ntr.serving.process import ServerProcess
from tests.serving.conftest import watch

MAX_HISTORY = 30
MAX_BODY = 20_000


@pytest.fixture(scope="module")
def model(tiny_export):
    return ExportedModel(tiny_export)


@pytest.fixture(scope="module")
def server(tiny_export, tiny_index, tmp_path_factory):
    db = str(tmp_path_factory.mktemp("serve") / "events.sqlite")
    flags = ("--max-k", "50", "--max-history", str(MAX_HISTORY), "--max-body-bytes", str(MAX_BODY))
    process = ServerProcess(tiny_export, tiny_index, db, *flags)
    yield process
    assert process.stop_gracefully(), process.log()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_health_model_and_openapi(client, model, tiny_index):
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    info = client.get("/v1/model").json()
    with open(f"{tiny_index}/manifest.json") as handle:
        manifest = json.load(handle)
    assert info["fingerprint"] == model.fingerprint == manifest["model"]["fingerprint"]
    assert info["index"]["recall"] == manifest["recall"]["measured"]
    assert info["num_items"] == len(model.item_ids) and info["limits"]["max_history"] == MAX_HISTORY
    schema = client.get("/openapi.json").json()
    assert {"/v1/recommend", "/v1/events", "/healthz", "/v1/model"} <= set(schema["paths"])


def test_docs_and_every_asset_they_reference_come_from_the_local_server(client, server):
    import re
    from urllib.parse import urlsplit

    for page in ("/docs", "/redoc"):
        response = client.get(page)
        assert response.status_code == 200, page
        refs = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", response.text)
        refs += re.findall(r"""(?:url|spec-url)\s*[:=]\s*['"]([^'"]+)['"]""", response.text)
        assets = [r for r in refs if not r.startswith(("#", "data:"))]
        assert assets, response.text
        for ref in assets:
            parts = urlsplit(ref)
            assert not parts.netloc or parts.netloc == urlsplit(server.url).netloc, f"{page} loads {ref}"
            asset = client.get(parts.path)
            assert asset.status_code == 200 and asset.content, f"{page}: {ref} -> {asset.status_code}"


def test_a_dislike_removes_that_creator_from_the_next_response(client, model):
    user = "alice"
    history = [watch(model.item_ids[i], 1000 + i) for i in range(5)]
    assert client.post("/v1/events", json={"user_id": user, "events": history}).json()["accepted"] == 5
    before = client.post("/v1/recommend", json={"user_id": user, "k": 20}).json()
    assert before["history_length"] == 5 and len(before["items"]) == 20
    top = before["items"][0]
    dislike = {"item_id": top["item_id"], "timestamp": 2000, "action": "dislike", "reason": "creator"}
    assert client.post("/v1/events", json={"user_id": user, "events": [dislike]}).status_code == 200
    after = client.post("/v1/recommend", json={"user_id": user, "k": 20, "debug": True}).json()
    assert after["history_length"] == 6 and len(after["items"]) == 20
    assert top["creator_id"] not in {item["creator_id"] for item in after["items"]}
    assert top["item_id"] not in {item["item_id"] for item in after["items"]}
    # Debug output names why candidates went: the consumed history, and the creator's items.
    assert {f["why"] for f in after["filtered"]} <= {"consumed", "disliked", "creator_disliked"}


def test_explicit_history_and_filters_without_a_stored_user(client, model):
    body = {
        "history": [watch(model.item_ids[0], 1)],
        "k": 5,
        "filters": {"exclude_items": [model.item_ids[1]], "exclude_creators": [model.items[2]["creator_id"]]},
    }
    response = client.post("/v1/recommend", json=body)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 5 and model.item_ids[1] not in {i["item_id"] for i in items}
    assert model.items[2]["creator_id"] not in {i["creator_id"] for i in items}
    assert "filtered" not in response.json()  # only with debug


def test_unknown_items_are_ignored_and_reported(client, model):
    body = {"history": [watch("not-in-catalogue", 1), watch(model.item_ids[0], 2)], "k": 3}
    response = client.post("/v1/recommend", json=body).json()
    assert response["ignored_items"] == ["not-in-catalogue"] and len(response["items"]) == 3
    stored = client.post("/v1/events", json={"user_id": "bob", "events": [watch("new-item", 1)]}).json()
    assert stored == {
        "user_id": "bob",
        "accepted": 1,
        "duplicates": 0,
        "unknown_items": ["new-item"],
        "predicted_reasons": [],
    }


def bad_requests(model):
    event = watch(model.item_ids[0], 1)
    return {
        "malformed JSON": ("/v1/recommend", b'{"k": 3,', 422, "JSON"),
        "unknown action": (
            "/v1/events",
            {"user_id": "u", "events": [{**event, "action": "love"}]},
            422,
            "action",
        ),
        "unknown reason": (
            "/v1/events",
            {"user_id": "u", "events": [{**event, "reason": "meh"}]},
            422,
            "reason",
        ),
        "over-long history": ("/v1/recommend", {"history": [event] * (MAX_HISTORY + 1)}, 422, "at most 30"),
        "k = 0": ("/v1/recommend", {"history": [event], "k": 0}, 422, "greater than or equal to 1"),
        "k over the limit": ("/v1/recommend", {"history": [event], "k": 51}, 422, "less than or equal to 50"),
        "no events": ("/v1/events", {"user_id": "u", "events": []}, 422, "at least 1"),
        "extra field": ("/v1/recommend", {"history": [event], "kk": 3}, 422, "Extra inputs"),
        "negative watch time": (
            "/v1/events",
            {"user_id": "u", "events": [{**event, "watch_ms": -1}]},
            422,
            "watch_ms",
        ),
        "body too large": (
            "/v1/recommend",
            {"history": [event], "pad": "x" * MAX_BODY},
            413,
            "over 20000 bytes",
        ),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "malformed JSON",
        "unknown action",
        "unknown reason",
        "over-long history",
        "k = 0",
        "k over the limit",
        "no events",
        "extra field",
        "negative watch time",
        "body too large",
    ],
)
def test_bad_input_gets_a_4xx_with_a_message(client, model, kind):
    path, body, status, message = bad_requests(model)[kind]
    if isinstance(body, bytes):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert message in response.text


def test_a_streamed_body_over_the_limit_gets_413(client):
    def chunks():
        for _ in range(10):
            yield b" " * (MAX_BODY // 4)  # no content-length: the limit must count streamed bytes

    response = client.post("/v1/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_graceful_shutdown_and_kill_keep_every_acknowledged_event(tiny_export, tiny_index, tmp_path, model):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        db = str(tmp_path / f"events-{sig}.sqlite")
        process = ServerProcess(tiny_export, tiny_index, db)
        acknowledged = 0
        with httpx.Client(base_url=process.url, timeout=30) as c:
            for t in range(20):
                body = {
                    "user_id": f"u{t % 3}",
                    "events": [watch(model.item_ids[t], t + 1), watch(model.item_ids[t + 1], t + 1)],
                }
                acknowledged += c.post("/v1/events", json=body).json()["accepted"]
        if sig == signal.SIGTERM:
            assert process.stop_gracefully(), process.log()
        else:
            assert process.stop(sig) == -signal.SIGKILL
        with sqlite3.connect(db) as db_handle:
            assert db_handle.execute("SELECT COUNT(*) FROM events").fetchone() == (acknowledged,) == (40,)


def test_histories_read_from_training_data_are_accepted_as_they_are(client, tiny_data):
    # read_histories is how the benchmarks (serving_load, catalogue_scale) replay logged users
    # into the service; a field the events schema does not know would be a 422 there.
    histories = read_histories(tiny_data, "valid", limit=3)
    assert len(histories) == 3
    for i, history in enumerate(histories):
        events = [{k: v for k, v in event.items() if v is not None} for event in history][-MAX_HISTORY:]
        response = client.post("/v1/events", json={"user_id": f"replayed{i}", "events": events})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(events)
        recommended = client.post("/v1/recommend", json={"user_id": f"replayed{i}", "k": 5}).json()
        assert recommended["history_length"] == len(events) and len(recommended["items"]) == 5
