"""The SQLite event store: order, limits, persistence and concurrent writers."""

import sqlite3
import threading

import pytest

from ntr.serving.store import EventStore


def ev(item, ts, action="view", reason=None):
    return {
        "item_id": item,
        "timestamp": ts,
        "action": action,
        "watch_ms": 10,
        "duration_ms": None,
        "reason": reason,
    }


def test_history_is_time_ordered_per_user_with_a_limit(tmp_path):
    store = EventStore(str(tmp_path / "events.sqlite"))
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


def test_committed_events_survive_reopening_and_wal_is_on(tmp_path):
    path = str(tmp_path / "events.sqlite")
    store = EventStore(path)
    store.append("u", [ev("a", 1)])
    # Read through a separate connection while the writer is still open: the commit is visible.
    other = sqlite3.connect(path)
    assert other.execute("SELECT COUNT(*) FROM events").fetchone() == (1,)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()
    store.close()
    assert EventStore(path).history("u")[0]["item_id"] == "a"


def test_concurrent_appends_lose_nothing(tmp_path):
    store = EventStore(str(tmp_path / "events.sqlite"))

    def writer(user):
        for t in range(50):
            store.append(user, [ev(f"{user}-{t}", t)])

    threads = [threading.Thread(target=writer, args=(f"u{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count() == 200
    assert [e["item_id"] for e in store.history("u2")] == [f"u2-{t}" for t in range(50)]


def test_a_failed_transaction_keeps_nothing_of_it(tmp_path):
    store = EventStore(str(tmp_path / "events.sqlite"))
    with pytest.raises(sqlite3.IntegrityError):
        store.append("u", [ev("a", 1), ev(None, 2)])  # item_id NOT NULL fails on the second row
    assert store.count() == 0
    store.append("u", [ev("b", 3)])
    assert store.count() == 1


def test_bad_synchronous_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="NORMAL or FULL"):
        EventStore(str(tmp_path / "e.sqlite"), synchronous="OFF")
