"""The event store interface: what `POST /v1/events` appends and recommend reads.

Two stores implement it with the same guarantees:

- `SQLiteEventStore` (`store_sqlite.py`), the embedded default: one file, one process.
- `PostgresEventStore` (`store_postgres.py`): several `ntr serve` replicas share one
  PostgreSQL database, so a dislike posted to one replica changes the next answer of another.

Both commit an `append` before it returns (an acknowledged event survives a kill -9 of the
service), keep each user's events in timestamp-then-arrival order, and store a repeat of
(user, event_id) once, so a client may retry a request whose answer it did not get.
`open_store` picks the store from where it lives: a `postgresql://` URL or a file path.
"""

from __future__ import annotations

import abc
import re

from ntr.pipelines.events import EVENT_COLUMNS

# Where a reason came from ("stated" by the user or "predicted" by the reason model) and the
# prediction's probability; NULL for events without a reason.
STATED, PREDICTED = "stated", "predicted"
FIELDS = ("item_id", "timestamp", "action", "watch_ms", "duration_ms", "reason")
REASON_FIELDS = ("reason_source", "reason_confidence")
# What history() selects, in this order, and what append() inserts.
COLUMNS = ("user_id", *FIELDS, *REASON_FIELDS)
INSERTED = (*COLUMNS, "event_id")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreUnavailable(RuntimeError):
    """The database does not answer; nothing of the call was stored (the service says 503)."""


class EventStore(abc.ABC):
    """Per-user event histories, safe to share between threads."""

    @abc.abstractmethod
    def append(self, user_id: str, events: list[dict]) -> int:
        """Stores `events` (canonical dicts, optionally with reason_source, reason_confidence and
        event_id) for `user_id` in one committed transaction; returns how many were new (an event
        whose (user, event_id) is already stored, or repeated in `events`, is skipped)."""

    @abc.abstractmethod
    def history(self, user_id: str, limit: int | None = None) -> list[dict]:
        """The user's events, oldest first (by timestamp, then arrival); the last `limit` only.

        Each is a canonical event; one whose reason has a recorded source also carries
        `reason_source` and `reason_confidence`.
        """

    @abc.abstractmethod
    def count(self) -> int:
        """Events stored, all users."""

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the database answers (for /healthz)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Releases the connections; the store is not used afterwards."""


def insert_rows(user_id: str, events: list[dict]) -> list[tuple]:
    """The rows `append` inserts, in `INSERTED` order."""
    return [(user_id, *(event.get(field) for field in INSERTED[1:])) for event in events]


def events_from_rows(rows_newest_first: list[tuple]) -> list[dict]:
    """`history`'s answer from rows selected in `COLUMNS` order, newest first."""
    out = []
    for row in reversed(rows_newest_first):
        event = dict(zip(EVENT_COLUMNS, row[: len(EVENT_COLUMNS)], strict=True))
        source, confidence = row[len(EVENT_COLUMNS) :]
        if source is not None:
            event.update(reason_source=source, reason_confidence=confidence)
        out.append(event)
    return out


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def describe(location: str) -> str:
    """`location` fit for a log line: a URL's password is masked."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", location) if is_postgres(location) else location


def open_store(location: str, synchronous: str = "NORMAL") -> EventStore:
    """The store at `location`: a `postgresql://` URL (replicas share it) or a SQLite file.

    Args:
      location: `postgresql://user:password@host:port/db` (libpq's URL form), or a file path.
      synchronous: SQLite's durability ("NORMAL": survives a process kill; "FULL": also power
        loss). PostgreSQL commits with the server's own settings (synchronous_commit=on by
        default: durable against power loss); a value other than NORMAL is refused there, so a
        flag that cannot take effect does not pass silently.
    """
    if is_postgres(location):
        if synchronous != "NORMAL":
            raise ValueError(
                "--synchronous applies to the SQLite store only; PostgreSQL's durability is its "
                "server's synchronous_commit setting. Leave --synchronous at NORMAL."
            )
        from ntr.serving.store_postgres import PostgresEventStore  # noqa: PLC0415 (optional driver)

        return PostgresEventStore(location)
    from ntr.serving.store_sqlite import SQLiteEventStore  # noqa: PLC0415

    return SQLiteEventStore(location, synchronous)
