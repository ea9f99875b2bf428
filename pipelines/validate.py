"""Row validation: raw rows (str-valued CSV or typed JSON) -> canonical events or dead letters."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ntr.pipelines.events import ACTIONS, MAX_TIMESTAMP, REASONS, REQUIRED_COLUMNS

DEAD_LETTER_TAG = "dead_letter"

# Every dead-letter kind the pipeline can emit; stats.json counts each of them.
DEAD_LETTER_KINDS = (
    "malformed_row",
    "bad_encoding",
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


# Keys the readers add to a row: where it was read (`ntr.pipelines.io`), and for a row that
# could not be parsed, its text, the error and the dead-letter kind.
LOCATION_KEYS = ("_file", "_line")
MARKER_KEYS = ("_malformed", "_error", "_kind")


def dead_letter(row: Any, kind: str, message: str) -> dict:
    """The dead-letter record for `row`: the row as it came (for a row that could not be
    parsed, its text), what is wrong and how to fix it, and when the reader said so, the file
    and line (for Parquet, the row number) it came from."""
    record = {"kind": kind, "error": message, "row": row}
    if isinstance(row, dict) and ("_file" in row or "_malformed" in row):
        record["row"] = (
            row["_malformed"]
            if "_malformed" in row
            else {k: v for k, v in row.items() if k not in LOCATION_KEYS}
        )
        if "_file" in row:
            record["file"], record["line"] = row["_file"], row["_line"]
    return record


def malformed(row: Any) -> InvalidRow | None:
    """The InvalidRow a reader's malformed marker stands for, or None for a parsed row."""
    if isinstance(row, dict) and "_malformed" in row:
        return InvalidRow(row.get("_kind", "malformed_row"), row["_error"])
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


# Larger counts of milliseconds (285,000 years) are not data; they would overflow int64 later.
MAX_MS = 2**53


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def _int_or_none(row: dict, name: str, kind: str) -> int | None:
    value = row.get(name)
    if _blank(value):
        return None
    if isinstance(value, bool):  # JSON true is no timestamp (Python's bool is an int)
        raise InvalidRow(kind, f"{name}={value!r} is not a number")
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRow(kind, f"{name}={_shown(value)} is not a number") from None
    if not math.isfinite(number) or number != int(number):
        raise InvalidRow(kind, f"{name}={_shown(value)} is not a whole number")
    return int(number)


def _text(row: dict, name: str) -> str:
    value = row[name]
    if isinstance(value, (dict, list)):
        raise InvalidRow("malformed_row", f"{name} is a JSON {type(value).__name__}, not a string or number")
    text = str(value).strip()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        message = f"{name}={_shown(text)} is not valid Unicode (a lone surrogate)"
        raise InvalidRow("bad_encoding", message) from None
    return text


def _flag_or_none(row: dict, name: str) -> bool | None:
    value = row.get(name)
    if _blank(value):
        return None
    text = str(value).strip().lower()
    if isinstance(value, bool) or text in ("0", "1", "true", "false", "0.0", "1.0"):
        return text in ("1", "true", "1.0")
    raise InvalidRow("bad_number", f"{name}={_shown(value)} is not a flag (0/1 or true/false)")


def _probability_or_none(row: dict, name: str) -> float | None:
    value = row.get(name)
    if _blank(value):
        return None
    try:
        number = float(value) if not isinstance(value, (bool, dict, list)) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not 0.0 < number <= 1.0:  # nan fails too
        raise InvalidRow("bad_number", f"{name}={_shown(value)} is not a probability in (0, 1]")
    return number


def parse_event(row: dict, known_items: frozenset[str] | None = None) -> dict:
    """Validates one raw row and returns the canonical event.

    Args:
      row: a dict with at least the columns of REQUIRED_COLUMNS; values may be strings (CSV)
        or typed (JSON/Parquet). Extra columns are dropped.
      known_items: the item catalogue's ids, or None to accept any item id.

    Returns:
      A dict with exactly `ntr.pipelines.events.EVENT_COLUMNS` + `LOGGING_COLUMNS`, typed
      (the logging columns None when the row has none).

    Raises:
      InvalidRow: with the dead-letter kind and a message saying what to fix.
    """
    if not isinstance(row, dict):
        raise InvalidRow("malformed_row", f"expected an object with columns, got {type(row).__name__}")
    marker = malformed(row)
    if marker is not None:
        raise marker
    missing = [c for c in REQUIRED_COLUMNS if _blank(row.get(c))]
    if missing:
        raise InvalidRow("missing_field", f"missing required field(s) {missing}")
    timestamp = _int_or_none(row, "timestamp", "bad_timestamp")
    if not 0 < timestamp < MAX_TIMESTAMP:
        hint = " (milliseconds? divide by 1000)" if timestamp >= MAX_TIMESTAMP else ""
        raise InvalidRow("bad_timestamp", f"timestamp={_shown(timestamp)} is not unix seconds{hint}")
    action = _text(row, "action")
    if action not in ACTIONS:
        raise InvalidRow("unknown_action", f"action={action!r} is not one of {list(ACTIONS)}")
    reason = None if _blank(row.get("reason")) else _text(row, "reason")
    if reason is not None and reason not in REASONS:
        raise InvalidRow("unknown_reason", f"reason={reason!r} is not one of {list(REASONS)}")
    watch_ms = _int_or_none(row, "watch_ms", "bad_number")
    duration_ms = _int_or_none(row, "duration_ms", "bad_number")
    if (watch_ms is not None and watch_ms < 0) or (duration_ms is not None and duration_ms < 0):
        raise InvalidRow(
            "negative_watch_time", f"watch_ms={watch_ms}, duration_ms={duration_ms} must be >= 0"
        )
    if max(watch_ms or 0, duration_ms or 0) > MAX_MS:
        raise InvalidRow("bad_number", f"watch_ms / duration_ms over {MAX_MS} milliseconds")
    item_id = _text(row, "item_id")
    if known_items is not None and item_id not in known_items:
        raise InvalidRow("unknown_item", f"item_id={item_id!r} is not in the item catalogue")
    return {
        "user_id": _text(row, "user_id"),
        "item_id": item_id,
        "timestamp": timestamp,
        "action": action,
        "watch_ms": watch_ms,
        "duration_ms": duration_ms,
        "reason": reason,
        "is_random": _flag_or_none(row, "is_random"),
        "propensity": _probability_or_none(row, "propensity"),
    }


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_json_line(line: str) -> dict:
    """A JSONL line -> dict, or the malformed marker validation turns into a dead letter."""
    try:
        row = json.loads(line)
    except RecursionError:
        return {"_malformed": line[:1000], "_error": "not valid JSON: nested too deep"}
    except ValueError as err:  # JSONDecodeError, or an integer over Python's 4,300 digits
        return {"_malformed": line[:1000], "_error": f"not valid JSON: {str(err)[:200]}"}
    if not isinstance(row, dict):
        return {"_malformed": line, "_error": "a JSONL line must be an object"}
    # A \uD800-\uDFFF escape that is not half of a pair decodes to a lone surrogate, which no
    # later stage can encode; only lines holding such an escape pay for the check.
    if _SURROGATE_ESCAPE.search(line):
        try:
            json.dumps(row, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            error = "a lone surrogate escape (\\ud800-\\udfff): not Unicode"
            return {"_malformed": line, "_error": error, "_kind": "bad_encoding"}
    return row
