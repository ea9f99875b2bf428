"""Two `ntr serve` replicas over one real PostgreSQL, through their HTTP ports on loopback: a
dislike posted to one changes the other's next answer, and a kill -9 of one under a stream of
posts loses no acknowledged event."""

import signal
import threading

import httpx
import psycopg
import pytest

from ntr.retrieval.exported import ExportedModel
from ntr.serving.process import ServerProcess
from tests.serving.conftest import watch


@pytest.fixture(scope="module")
def model(tiny_export):
    return ExportedModel(tiny_export)


def replicas(n, tiny_export, url, tmp_path):
    return [
        ServerProcess(tiny_export, None, url, log_path=str(tmp_path / f"replica-{i}.log")) for i in range(n)
    ]


def test_a_dislike_on_one_replica_changes_the_next_answer_of_another(
    tiny_export, postgres_url, tmp_path, model
):
    a, b = replicas(2, tiny_export, postgres_url, tmp_path)
    try:
        with (
            httpx.Client(base_url=a.url, timeout=30) as to_a,
            httpx.Client(base_url=b.url, timeout=30) as to_b,
        ):
            history = [watch(model.item_ids[i], 1000 + i) for i in range(5)]
            assert to_a.post("/v1/events", json={"user_id": "alice", "events": history}).status_code == 200
            before = to_b.post("/v1/recommend", json={"user_id": "alice", "k": 20}).json()
            assert before["history_length"] == 5  # B reads what A stored
            top = before["items"][0]
            dislike = {"item_id": top["item_id"], "timestamp": 2000, "action": "dislike", "reason": "creator"}
            assert to_a.post("/v1/events", json={"user_id": "alice", "events": [dislike]}).status_code == 200
            after = to_b.post("/v1/recommend", json={"user_id": "alice", "k": 20}).json()
            assert after["history_length"] == 6
            assert top["creator_id"] not in {item["creator_id"] for item in after["items"]}
            # A retry of the same event_id through the other replica is acknowledged, stored once.
            once = {"user_id": "alice", "events": [watch(model.item_ids[9], 3000, event_id="r1")]}
            assert to_a.post("/v1/events", json=once).json()["duplicates"] == 0
            assert to_b.post("/v1/events", json=once).json()["duplicates"] == 1
    finally:
        for replica in (a, b):
            assert replica.stop_gracefully(), replica.log()


def test_kill_9_of_a_replica_under_load_loses_no_acknowledged_event(
    tiny_export, postgres_url, tmp_path, model
):
    a, b = replicas(2, tiny_export, postgres_url, tmp_path)
    acknowledged: set[str] = set()
    stop = threading.Event()

    def stream(replica, prefix):
        with httpx.Client(base_url=replica.url, timeout=30) as client:
            for n in range(100_000):
                if stop.is_set():
                    return
                event_id = f"{prefix}{n}"
                body = {"user_id": f"u{n % 7}", "events": [watch(model.item_ids[n % 50], n + 1, event_id)]}
                try:
                    response = client.post("/v1/events", json=body)
                except httpx.TransportError:
                    return  # the replica was killed: this post was never acknowledged
                if response.status_code == 200:
                    acknowledged.add(event_id)

    threads = [threading.Thread(target=stream, args=(r, p)) for r, p in ((a, "a"), (b, "b"))]
    for thread in threads:
        thread.start()
    threading.Event().wait(3.0)  # both replicas under load
    assert a.stop(signal.SIGKILL) == -signal.SIGKILL
    threading.Event().wait(1.0)  # B keeps serving after A died
    stop.set()
    for thread in threads:
        thread.join()
    try:
        with psycopg.connect(postgres_url) as conn:
            stored = {row[0] for row in conn.execute("SELECT event_id FROM events")}
        from_a = {e for e in acknowledged if e.startswith("a")}
        assert len(from_a) > 10 and len(acknowledged - from_a) > len(from_a)
        assert acknowledged <= stored  # nothing acknowledged is lost
        # At most the one post in flight when A died was stored without its answer arriving.
        assert len(stored - acknowledged) <= 1
    finally:
        assert b.stop_gracefully(), b.log()


def test_a_database_outage_gets_503_and_the_replica_recovers(tiny_export, tmp_path, model):
    import pgserver  # noqa: PLC0415

    pgdata = str(tmp_path / "pg")
    database = pgserver.get_server(pgdata, cleanup_mode="stop")
    replica = ServerProcess(tiny_export, None, database.get_uri(), log_path=str(tmp_path / "replica.log"))
    body = {"user_id": "u", "events": [watch(model.item_ids[0], 1, event_id="x1")]}
    try:
        with httpx.Client(base_url=replica.url, timeout=30) as client:
            assert client.post("/v1/events", json=body).status_code == 200
            database.cleanup()  # the database server stops
            down = client.post("/v1/events", json={**body, "events": [watch(model.item_ids[1], 2, "x2")]})
            assert down.status_code == 503 and down.headers["retry-after"] == "1"
            assert "does not answer" in down.json()["detail"]
            assert client.get("/healthz").status_code == 503
            database = pgserver.get_server(pgdata, cleanup_mode="stop")  # back, same data
            again = client.post("/v1/events", json={**body, "events": [watch(model.item_ids[1], 2, "x2")]})
            assert again.status_code == 200 and again.json()["duplicates"] == 0
            assert client.post("/v1/recommend", json={"user_id": "u", "k": 3}).json()["history_length"] == 2
    finally:
        assert replica.stop_gracefully(), replica.log()
        database.cleanup()
