"""Row validation: raw rows (str-valued CSV or typed JSON) -> canonical events or dead letters."""

from __future__ import annotations

import json
from typing import Any

from ntr.pipelines.events import ACTIONS, MAX_TIMESTAMP, REASONS, REQUIRED_COLUMNS

DEAD_LETTER_TAG = "dead_letter"

# Every dead-letter kind the pipeline can emit; stats.json counts each of them.
DEAD_LETTER_KINDS = (
    "malformed_row",
    "missing_field",
    "bad_timestamp",
    "unknown_action",
    "unknown_reason",
    "bad_number",
    "negative_watch_time",
    "unknown_item",
    "duplicate_event",
    "bad_item",
    "duplicate_item",
)


class InvalidRow(ValueError):
    """A row that cannot become an event; `kind` is one of DEAD_LETTER_KINDS."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def dead_letter(row: Any, kind: str, message: str) -> dict:
    """The dead-letter record for `row`: the row as it came, what is wrong, and how to fix it."""
    return {"kind": kind, "error": message, "row": row}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _int_or_none(row: dict, name: str, kind: str) -> int | None:
    value = row.get(name)
    if _blank(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRow(kind, f"{name}={value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")) or number != int(number):
        raise InvalidRow(kind, f"{name}={value!r} is not a whole number")
    return int(number)


def parse_event(row: dict, known_items: frozenset[str] | None = None) -> dict:
    """Validates one raw row and returns the canonical event.

    Args:
      row: a dict with at least the columns of REQUIRED_COLUMNS; values may be strings (CSV)
        or typed (JSON/Parquet). Extra columns are dropped.
      known_items: the item catalogue's ids, or None to accept any item id.

    Returns:
      A dict with exactly `ntr.pipelines.events.EVENT_COLUMNS`, typed.

    Raises:
      InvalidRow: with the dead-letter kind and a message saying what to fix.
    """
    if not isinstance(row, dict):
        raise InvalidRow("malformed_row", f"expected an object with columns, got {type(row).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if _blank(row.get(c))]
    if missing:
        raise InvalidRow("missing_field", f"missing required field(s) {missing}")
    timestamp = _int_or_none(row, "timestamp", "bad_timestamp")
    if not 0 < timestamp < MAX_TIMESTAMP:
        hint = " (milliseconds? divide by 1000)" if timestamp >= MAX_TIMESTAMP else ""
        raise InvalidRow("bad_timestamp", f"timestamp={timestamp} is not unix seconds{hint}")
    action = str(row["action"]).strip()
    if action not in ACTIONS:
        raise InvalidRow("unknown_action", f"action={action!r} is not one of {list(ACTIONS)}")
    reason = None if _blank(row.get("reason")) else str(row["reason"]).strip()
    if reason is not None and reason not in REASONS:
        raise InvalidRow("unknown_reason", f"reason={reason!r} is not one of {list(REASONS)}")
    watch_ms = _int_or_none(row, "watch_ms", "bad_number")
    duration_ms = _int_or_none(row, "duration_ms", "bad_number")
    if (watch_ms is not None and watch_ms < 0) or (duration_ms is not None and duration_ms < 0):
        raise InvalidRow(
            "negative_watch_time", f"watch_ms={watch_ms}, duration_ms={duration_ms} must be >= 0"
        )
    item_id = str(row["item_id"]).strip()
    if known_items is not None and item_id not in known_items:
        raise InvalidRow("unknown_item", f"item_id={item_id!r} is not in the item catalogue")
    return {
        "user_id": str(row["user_id"]).strip(),
        "item_id": item_id,
        "timestamp": timestamp,
        "action": action,
        "watch_ms": watch_ms,
        "duration_ms": duration_ms,
        "reason": reason,
    }


def parse_json_line(line: str) -> dict:
    """A JSONL line -> dict, or the malformed marker validation turns into a dead letter."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        return {"_malformed": line, "_error": f"not valid JSON: {err}"}
    if not isinstance(row, dict):
        return {"_malformed": line, "_error": "a JSONL line must be an object"}
    return row
