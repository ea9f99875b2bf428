"""Shared test set-up: quiet TF, and helpers to write literal fixture files."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return str(path)


def event(user, item, ts, action="view", watch=None, duration=None, reason=None):
    """A canonical event dict, short to write in tests."""
    return {
        "user_id": user,
        "item_id": item,
        "timestamp": ts,
        "action": action,
        "watch_ms": watch,
        "duration_ms": duration,
        "reason": reason,
    }
