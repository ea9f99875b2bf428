"""Shared test set-up: quiet TF, and helpers to write literal fixture files."""

import json
import os

import pytest

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


# Window length of the tiny world's sequences (tests/retrieval/conftest.py TINY_MAX_LEN matches).
TINY_WINDOW = 20


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """WORKDIR/data of the tiny world (seed 3), windows of TINY_WINDOW events."""
    from ntr.pipelines.config import PreprocessConfig  # noqa: PLC0415 (Beam only when used)
    from ntr.pipelines.pipeline import run_preprocess  # noqa: PLC0415
    from ntr.simulation.world import scaled_config, simulate, write_world  # noqa: PLC0415

    root = tmp_path_factory.mktemp("tiny-world")
    raw = os.path.join(root, "raw")
    write_world(simulate(scaled_config("tiny", seed=3)), raw)
    data = os.path.join(root, "data")
    run_preprocess(
        PreprocessConfig(
            events_path=os.path.join(raw, "events.jsonl"),
            items_path=os.path.join(raw, "items.jsonl"),
            output_dir=data,
            max_len=TINY_WINDOW,
        )
    )
    return data
