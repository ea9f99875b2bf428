"""The shared event store (PostgreSQL): several `ntr serve` replicas read and write one database.

Same guarantees as the SQLite store: `append` returns after its transaction committed (with
the server's default synchronous_commit=on the commit is flushed to the server's WAL, so an
acknowledged event survives a kill -9 of the replica and of the database server), histories
come back in timestamp-then-arrival order, and a repeat of (user, event_id) is stored once,
also when two replicas receive the same retry at the same moment (a unique index decides).

One connection, checked with an empty round trip before each call and replaced when dead, so
a database restart costs no failed request once the server is back. While the database
cannot be reached, calls raise `StoreUnavailable` (the service answers 503; clients retry with
their `event_id`).
"""

from __future__ import annotations

import threading

import psycopg

from ntr.serving.store import (
    COLUMNS,
    INSERTED,
    EventStore,
    StoreUnavailable,
    describe,
    events_from_rows,
    insert_rows,
)

# Column -> PostgreSQL type: the table's columns (after `seq`) and the arrays `append` sends.
_TYPES = {
    "user_id": "text",
    "item_id": "text",
    "timestamp": "bigint",
    "action": "text",
    "watch_ms": "bigint",
    "duration_ms": "bigint",
    "reason": "text",
    "reason_source": "text",
    "reason_confidence": "float8",
    "event_id": "text",
}
_REQUIRED = ("user_id", "item_id", "timestamp", "action")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (seq BIGSERIAL PRIMARY KEY, "
    + ", ".join(f"{c} {t}{' NOT NULL' if c in _REQUIRED else ''}" for c, t in _TYPES.items())
    + ");\n"
    "CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, timestamp, seq);\n"
    "CREATE UNIQUE INDEX IF NOT EXISTS events_once ON events (user_id, event_id) WHERE event_id IS NOT NULL;"
)
# Replicas starting together would race on CREATE ... IF NOT EXISTS (it is not atomic against
# a concurrent create); a transaction-scoped advisory lock lets one create and the others wait.
_SCHEMA_LOCK = 7_402_113_001
# One statement per append, whatever its size: the rows travel as one array per column, and
# WITH ORDINALITY keeps their order, so `seq` (arrival) follows the request.
_INSERT = (
    f"INSERT INTO events ({', '.join(INSERTED)}) "
    f"SELECT {', '.join(INSERTED)} FROM unnest("
    + ", ".join(f"%s::{_TYPES[c]}[]" for c in INSERTED)
    + f") WITH ORDINALITY AS rows ({', '.join(INSERTED)}, n) ORDER BY n "
    "ON CONFLICT (user_id, event_id) WHERE event_id IS NOT NULL DO NOTHING"
)


class PostgresEventStore(EventStore):
    """Per-user event histories in one PostgreSQL table, shared by every replica."""

    def __init__(self, url: str, timeout_s: float = 5.0):
        """Args:
        url: libpq URL, `postgresql://user:password@host:port/dbname` (a `host=` query
          parameter names a Unix socket folder).
        timeout_s: how long connecting may take before `StoreUnavailable`.
        """
        self.location = describe(url)
        self._url, self._timeout_s = url, timeout_s
        # One connection behind a lock, as in the SQLite store: a replica answers one request
        # at a time (store calls run on its event loop; /healthz's on a thread, behind the same
        # lock), so a pool would add nothing but its reconnection backoff, which grows during an
        # outage and delayed recovery after it by up to that backoff (seen in the outage test).
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

        def create(conn):
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)

        try:
            self._run(create)
        except StoreUnavailable as error:
            raise StoreUnavailable(
                f"cannot connect to the PostgreSQL event store at {self.location} within {timeout_s:.0f} s: "
                "check that the server runs and that the URL's host, port, user, password and "
                "database are right."
            ) from error

    def _connection(self) -> psycopg.Connection:
        """The open connection, checked with an empty round trip (a database restart leaves it
        dead), or a new one. Called with the lock held."""
        if self._conn is not None:
            try:
                self._conn.execute("")
                return self._conn
            except psycopg.OperationalError:
                self._conn.close()
                self._conn = None
        self._conn = psycopg.connect(
            self._url, autocommit=True, connect_timeout=max(1, round(self._timeout_s))
        )
        return self._conn

    def _run(self, work):
        """`work(conn)` in one committed transaction; database outages become StoreUnavailable."""
        with self._lock:
            try:
                conn = self._connection()
                with conn.transaction():  # BEGIN ... COMMIT, or ROLLBACK on an error
                    return work(conn)
            except psycopg.OperationalError as error:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise StoreUnavailable(
                    f"the event store at {self.location} does not answer ({type(error).__name__}); "
                    "nothing of this call was stored"
                ) from error

    def append(self, user_id: str, events: list[dict]) -> int:
        rows = insert_rows(user_id, events)
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in INSERTED]
        return self._run(lambda conn: conn.execute(_INSERT, columns).rowcount)

    def history(self, user_id: str, limit: int | None = None) -> list[dict]:
        query = (
            f"SELECT {', '.join(COLUMNS)} FROM events WHERE user_id = %s ORDER BY timestamp DESC, seq DESC"
        )
        params: tuple = (user_id,)
        if limit is not None:
            query += " LIMIT %s"
            params += (int(limit),)
        return events_from_rows(self._run(lambda conn: conn.execute(query, params).fetchall()))

    def count(self) -> int:
        return self._run(lambda conn: conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def ping(self) -> bool:
        try:
            return self._run(lambda conn: conn.execute("SELECT 1").fetchone() == (1,))
        except StoreUnavailable:
            return False

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
