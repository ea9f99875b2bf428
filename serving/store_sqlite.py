"""The embedded event store (SQLite, WAL), the default `EventStore`.

Each `append` is one transaction committed before it returns, so an event the service
acknowledged survives the process being killed (WAL with synchronous=NORMAL is durable
against process crashes; `synchronous="FULL"` also survives power loss, at one fsync per
commit). One process only: replicas need the PostgreSQL store.

The database is created readable by its owner only (0600); SQLite gives its -wal and -shm
files the database's permissions.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from ntr.serving.store import COLUMNS, INSERTED, EventStore, events_from_rows, insert_rows

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    action TEXT NOT NULL,
    watch_ms INTEGER,
    duration_ms INTEGER,
    reason TEXT,
    reason_source TEXT,
    reason_confidence REAL
);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, timestamp, seq);
"""
_IDEMPOTENCY = """
CREATE UNIQUE INDEX IF NOT EXISTS events_once ON events (user_id, event_id) WHERE event_id IS NOT NULL;
"""
# Stores made before these columns existed get them on open.
_ADDED_COLUMNS = {"reason_source": "TEXT", "reason_confidence": "REAL", "event_id": "TEXT"}


class SQLiteEventStore(EventStore):
    """Per-user event histories in one SQLite file, safe to share between threads."""

    def __init__(self, path: str, synchronous: str = "NORMAL"):
        """Args:
        path: the database file (created, with its folder, if missing; ":memory:" for tests
          that need no durability).
        synchronous: SQLite's synchronous pragma, "NORMAL" or "FULL" (see the module doc).
        """
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}.")
        self.path = path
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            _private(path)
        # One connection behind a lock: SQLite serialises writers anyway, and reads are short.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}")
        self._db.executescript(_IDEMPOTENCY)

    def append(self, user_id: str, events: list[dict]) -> int:
        rows = insert_rows(user_id, events)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.executemany(
                    # Only a uniqueness conflict (the event_id index) is skipped; OR IGNORE
                    # would also drop a row that breaks NOT NULL, silently.
                    f"INSERT INTO events ({', '.join(INSERTED)}) "
                    f"VALUES ({', '.join('?' * len(INSERTED))}) ON CONFLICT DO NOTHING",
                    rows,
                )
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return cursor.rowcount

    def history(self, user_id: str, limit: int | None = None) -> list[dict]:
        query = f"SELECT {', '.join(COLUMNS)} FROM events "
        query += "WHERE user_id = ? ORDER BY timestamp DESC, seq DESC"
        params: tuple = (user_id,)
        if limit is not None:
            query += " LIMIT ?"
            params += (int(limit),)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return events_from_rows(rows)

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def ping(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1").fetchone() == (1,)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _private(path: str) -> None:
    """Creates `path` 0600 if missing, and takes group/other access away if present (the store
    holds every user's history)."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.chmod(path + suffix, 0o600)
