"""The embedded event store (SQLite, WAL): what `POST /v1/events` appends and recommend reads.

Each `append` is one transaction committed before it returns, so an event the service
acknowledged survives the process being killed (WAL with synchronous=NORMAL is durable
against process crashes; `synchronous="FULL"` also survives power loss, at one fsync per
commit). An event may carry the client's `event_id`: a repeat of (user, event_id) is not
stored again, so a client may retry a request whose answer it did not get.

The database is created readable by its owner only (0600); SQLite gives its -wal and -shm
files the database's permissions.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from ntr.pipelines.events import EVENT_COLUMNS

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
_FIELDS = ("item_id", "timestamp", "action", "watch_ms", "duration_ms", "reason")
# Where a reason came from ("stated" by the user or "predicted" by the reason model) and the
# prediction's probability; NULL for events without a reason. Stores made before these columns
# existed get them on open.
STATED, PREDICTED = "stated", "predicted"
_REASON_FIELDS = ("reason_source", "reason_confidence")
_ADDED_COLUMNS = {"reason_source": "TEXT", "reason_confidence": "REAL", "event_id": "TEXT"}
_COLUMNS = ("user_id", *_FIELDS, *_REASON_FIELDS)
_INSERTED = (*_COLUMNS, "event_id")


class EventStore:
    """Per-user event histories in one SQLite file, safe to share between threads."""

    def __init__(self, path: str, synchronous: str = "NORMAL"):
        """Args:
        path: the database file (created with its folder's write access; ":memory:" for tests
          that need no durability).
        synchronous: SQLite's synchronous pragma, "NORMAL" or "FULL" (see the module doc).
        """
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}.")
        self.path = path
        if path != ":memory:":
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
        """Stores `events` (canonical dicts, optionally with reason_source, reason_confidence and
        event_id) for `user_id` in one transaction; returns how many were new (an event whose
        (user, event_id) is already stored, or repeated in `events`, is skipped)."""
        rows = [
            (user_id, *(event.get(field) for field in (*_FIELDS, *_REASON_FIELDS, "event_id")))
            for event in events
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.executemany(
                    # Only a uniqueness conflict (the event_id index) is skipped; OR IGNORE
                    # would also drop a row that breaks NOT NULL, silently.
                    f"INSERT INTO events ({', '.join(_INSERTED)}) "
                    f"VALUES ({', '.join('?' * len(_INSERTED))}) ON CONFLICT DO NOTHING",
                    rows,
                )
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return cursor.rowcount

    def history(self, user_id: str, limit: int | None = None) -> list[dict]:
        """The user's events, oldest first (by timestamp, then arrival); the last `limit` only.

        Each is a canonical event; one whose reason has a recorded source also carries
        `reason_source` and `reason_confidence`.
        """
        query = f"SELECT {', '.join(_COLUMNS)} FROM events "
        query += "WHERE user_id = ? ORDER BY timestamp DESC, seq DESC"
        params: tuple = (user_id,)
        if limit is not None:
            query += " LIMIT ?"
            params += (int(limit),)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        out = []
        for row in reversed(rows):
            event = dict(zip(EVENT_COLUMNS, row[: len(EVENT_COLUMNS)], strict=True))
            source, confidence = row[len(EVENT_COLUMNS) :]
            if source is not None:
                event.update(reason_source=source, reason_confidence=confidence)
            out.append(event)
        return out

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def ping(self) -> bool:
        """True when the database answers (for /healthz)."""
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
