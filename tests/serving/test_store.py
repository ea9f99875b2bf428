"""The event stores, SQLite and a real PostgreSQL: order, limits, persistence, idempotency and
concurrent writers, the same checks on both."""

import sqlite3
import threading

import psycopg
import pytest

from ntr.serving.store import StoreUnavailable, describe, open_store
from ntr.serving.store_postgres import PostgresEventStore
from ntr.serving.store_sqlite import SQLiteEventStore


def ev(item, ts, action="view", reason=None, event_id=None):
    event = {
        "item_id": item,
        "timestamp": ts,
        "action": action,
        "watch_ms": 10,
        "duration_ms": None,
        "reason": reason,
    }
    return event if event_id is None else {**event, "event_id": event_id}


@pytest.fixture(params=["sqlite", "postgres"])
def where(request, tmp_path):
    """Where a fresh store lives: a SQLite file or a database of its own on a real PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "events.sqlite")
    return request.getfixturevalue("postgres_url")


def test_history_is_time_ordered_per_user_with_a_limit(where):
    store = open_store(where)
    store.append("u1", [ev("b", 20), ev("a", 10)])
    store.append("u2", [ev("x", 5)])
    store.append("u1", [ev("c", 20, "dislike", "creator")])  # same second as b, arrived later
    history = store.history("u1")
    assert [(e["item_id"], e["timestamp"]) for e in history] == [("a", 10), ("b", 20), ("c", 20)]
    assert history[2] == {
        "user_id": "u1",
        "item_id": "c",
        "timestamp": 20,
        "action": "dislike",
        "watch_ms": 10,
        "duration_ms": None,
        "reason": "creator",
    }
    assert [e["item_id"] for e in store.history("u1", limit=2)] == ["b", "c"]
    assert store.history("nobody") == []
    assert store.count() == 4
    store.close()


def test_a_repeated_event_id_is_stored_once(where):
    store = open_store(where)
    # Within one call too: the second "e1" is skipped, the event without an id is always new.
    assert store.append("u", [ev("a", 1, event_id="e1"), ev("b", 2, event_id="e1"), ev("c", 3)]) == 2
    assert store.append("u", [ev("a", 1, event_id="e1"), ev("c", 3)]) == 1
    assert store.append("other", [ev("a", 1, event_id="e1")]) == 1  # another user's e1
    assert [e["item_id"] for e in store.history("u")] == ["a", "c", "c"]
    assert store.append("u", []) == 0
    store.close()


def test_reason_source_and_confidence_round_trip(where):
    store = open_store(where)
    store.append(
        "u", [{**ev("a", 1, "dislike", "creator"), "reason_source": "predicted", "reason_confidence": 0.75}]
    )
    [event] = store.history("u")
    assert (event["reason"], event["reason_source"], event["reason_confidence"]) == (
        "creator",
        "predicted",
        0.75,
    )
    store.close()


def test_committed_events_survive_reopening(where):
    store = open_store(where)
    store.append("u", [ev("a", 1)])
    other = open_store(where)  # a second connection (a second replica, for PostgreSQL)
    assert other.history("u")[0]["item_id"] == "a"
    other.close()
    store.close()
    assert open_store(where).history("u")[0]["item_id"] == "a"


def test_concurrent_appends_lose_nothing(where):
    stores = [open_store(where), open_store(where)]  # two writers, as two replicas would be

    def writer(i, user):
        for t in range(50):
            stores[i % 2].append(user, [ev(f"{user}-{t}", t)])

    threads = [threading.Thread(target=writer, args=(i, f"u{i}")) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[0].count() == 200 and stores[1].count() == 200
    assert [e["item_id"] for e in stores[1].history("u2")] == [f"u2-{t}" for t in range(50)]
    for store in stores:
        store.close()


def test_a_failed_transaction_keeps_nothing_of_it(where):
    store = open_store(where)
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.NotNullViolation)):
        store.append("u", [ev("a", 1), ev(None, 2)])  # item_id NOT NULL fails on the second row
    assert store.count() == 0
    store.append("u", [ev("b", 3)])
    assert store.count() == 1
    store.close()


def test_sqlite_uses_wal(tmp_path):
    path = str(tmp_path / "events.sqlite")
    store = open_store(path)
    assert isinstance(store, SQLiteEventStore)
    store.append("u", [ev("a", 1)])
    # Read through a separate connection while the writer is still open: the commit is visible.
    other = sqlite3.connect(path)
    assert other.execute("SELECT COUNT(*) FROM events").fetchone() == (1,)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()
    store.close()


def test_bad_synchronous_mode_is_refused(tmp_path, postgres_url):
    with pytest.raises(ValueError, match="NORMAL or FULL"):
        SQLiteEventStore(str(tmp_path / "e.sqlite"), synchronous="OFF")
    with pytest.raises(ValueError, match="SQLite store only"):
        open_store(postgres_url, synchronous="FULL")
    assert isinstance(open_store(postgres_url), PostgresEventStore)


def test_an_unreachable_database_is_said_plainly(tmp_path):
    # A socket folder where no server listens; the password must not reach the message.
    url = f"postgresql://bob:hunter2@/nowhere?host={tmp_path}"
    with pytest.raises(StoreUnavailable, match="cannot connect") as error:
        PostgresEventStore(url, timeout_s=0.5)
    assert "hunter2" not in str(error.value) and "bob:***@" in str(error.value)
    assert describe("postgresql://u:p@h/db") == "postgresql://u:***@h/db"
    assert describe("/var/lib/ntr/events.sqlite") == "/var/lib/ntr/events.sqlite"
