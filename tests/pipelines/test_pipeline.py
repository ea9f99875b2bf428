"""The whole preprocessing pipeline on literal inputs: outputs, stats and counters reconcile."""

import glob
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from ntr.pipelines.config import PreprocessConfig, SplitConfig
from ntr.pipelines.pipeline import build_pipeline, run_preprocess
from ntr.pipelines.validate import DEAD_LETTER_KINDS
from tests.conftest import event, write_jsonl

ITEMS = [
    {"item_id": f"i{k}", "creator_id": f"c{k % 2}", "categories": ["x", "y"][: k % 2 + 1],
     "duration_ms": 10_000, "text": f"t{k}"}
    for k in range(6)
]  # fmt: skip
SPLIT = SplitConfig(mode="last_events", holdout_events=1, min_train_events=2)


def good_events():
    rows = []
    for u in ("u1", "u2"):
        for t in range(6):
            watch = 1000 if t == 2 else 8000  # t == 2 is a skip
            rows.append(event(u, f"i{t}", 1_600_000_000 + t, "view", watch=watch, duration=10_000))
    rows.append(event("u1", "i5", 1_600_000_100, "dislike", reason="creator"))
    return rows


def bad_rows():
    return [
        "{not json",
        event("u1", "i1", 1_600_000_000, "love"),
        event("u1", "zzz", 1_600_000_000),
        event("u1", "i1", 1_600_000_000, "dislike", reason="boring"),
        event("u1", "i1", 1_600_000_000, "view", watch=-5),
        {"user_id": "u1", "item_id": "i1", "action": "view"},
        event("u2", "i0", 1_600_000_000, "view", watch=8000, duration=10_000),  # duplicate of a good row
    ]


def write_inputs(tmp_path, fmt="jsonl"):
    rows = good_events() + bad_rows()
    items = write_jsonl(tmp_path / "items.jsonl", ITEMS)
    if fmt == "jsonl":
        return write_jsonl(tmp_path / "events.jsonl", rows), items
    dict_rows = [r for r in rows if isinstance(r, dict)]
    if fmt == "csv":
        path = tmp_path / "events.csv"
        lines = ["user_id,item_id,timestamp,action,watch_ms,duration_ms,reason"]
        for r in dict_rows:
            lines.append(",".join("" if r.get(c) is None else str(r[c]) for c in lines[0].split(",")))
        lines.append("only,three,columns")
        path.write_text("\n".join(lines) + "\n")
        return str(path), items
    columns = ("user_id", "item_id", "timestamp", "action", "watch_ms", "duration_ms", "reason")
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in dict_rows])
    pq.write_table(table, tmp_path / "events.parquet")
    return str(tmp_path / "events.parquet"), items


@pytest.mark.parametrize("fmt, malformed", [("jsonl", 1), ("csv", 1), ("parquet", 0)])
def test_pipeline_outputs_and_stats(tmp_path, fmt, malformed):
    events_path, items_path = write_inputs(tmp_path, fmt)
    out = str(tmp_path / "data")
    config = PreprocessConfig(
        events_path=events_path, items_path=items_path, output_dir=out, max_len=4, split=SPLIT
    )
    stats = run_preprocess(config)

    assert stats["rows_in"] == 13 + 6 + malformed
    assert stats["rows_out"] == 13
    assert stats["rows_dead_letter"] == 6 + malformed
    assert stats["reconciled"] is True
    expected_dead = {"unknown_action": 1, "unknown_item": 1, "unknown_reason": 1,
                     "negative_watch_time": 1, "missing_field": 1, "duplicate_event": 1}  # fmt: skip
    if malformed:
        expected_dead["malformed_row"] = 1
    assert stats["dead_letter"] == expected_dead
    assert stats["labels"] == {"NEUTRAL": 0, "POSITIVE": 10, "EXPLICIT_NEGATIVE": 1, "IMPLICIT_NEGATIVE": 2}
    # u1: 7 events -> 5 train (4 targets: windows of 4 -> 2 windows), 1 valid, 1 test.
    # u2: 6 events -> 4 train (3 targets: 1 window), 1 valid, 1 test.
    assert stats["splits"] == {"train": 3, "valid": 2, "test": 2}
    assert stats["targets"]["test"] == {"EXPLICIT_NEGATIVE": 1, "POSITIVE": 1}

    dead = [json.loads(line) for f in glob.glob(f"{out}/dead_letter-*.jsonl") for line in open(f)]
    assert sorted(d["kind"] for d in dead) == sorted(k for k, n in expected_dead.items() for _ in range(n))
    assert all(d["error"] for d in dead) and {d["kind"] for d in dead} <= set(DEAD_LETTER_KINDS)
    with open(f"{out}/vocab/items.txt") as f:
        assert f.read().split() == [f"i{k}" for k in range(6)]
    with open(f"{out}/vocab/creators.txt") as f:
        assert f.read().split() == ["c0", "c1"]
    with open(f"{out}/vocab/categories.txt") as f:
        assert f.read().split() == ["x", "y"]
    with open(f"{out}/item_counts.tsv") as f:
        counts = dict(line.split("\t") for line in f.read().splitlines())
    # Positive train targets: u1 i1, i3, i4 (i2 is a skip); u2 i1, i3.
    assert counts == {"i0": "0", "i1": "2", "i2": "0", "i3": "2", "i4": "1", "i5": "0"}
    with open(f"{out}/config.json") as f:
        saved = json.load(f)
    assert PreprocessConfig.from_dict(saved["preprocess"]) == config
    assert saved["vocab_hash"] == stats["vocab_hash"]


def test_counters_reconcile(tmp_path):
    events_path, items_path = write_inputs(tmp_path)
    config = PreprocessConfig(
        events_path=events_path,
        items_path=items_path,
        output_dir=str(tmp_path / "data"),
        max_len=4,
        split=SPLIT,
    )
    os.makedirs(config.output_dir + "/vocab")
    pipeline = TestPipeline()
    build_pipeline(pipeline, config)
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["rows_valid"] == 14 and counters["rows_dead_letter"] == 6
    assert counters["duplicate_event"] == 1
    assert counters["rows_out"] == counters["rows_valid"] - counters["duplicate_event"] == 13
    labels = sum(
        counters.get(k, 0) for k in ("POSITIVE", "NEUTRAL", "EXPLICIT_NEGATIVE", "IMPLICIT_NEGATIVE")
    )
    assert labels == counters["rows_valid"]


def test_global_time_split(tmp_path):
    rows = [event("u1", f"i{t % 6}", 1_600_000_000 + 10 * t, "like") for t in range(20)]
    config = PreprocessConfig(
        events_path=write_jsonl(tmp_path / "e.jsonl", rows),
        items_path=write_jsonl(tmp_path / "items.jsonl", ITEMS),
        output_dir=str(tmp_path / "data"),
        split=SplitConfig(mode="global_time", valid_start=1_600_000_150, test_start=1_600_000_170),
    )
    stats = run_preprocess(config)
    assert stats["events"] == {"train": 15, "valid": 2, "test": 3}
    assert stats["time_cuts"] == {"valid_start": 1_600_000_150, "test_start": 1_600_000_170}


def test_missing_input_is_a_clear_error(tmp_path):
    config = PreprocessConfig(events_path=str(tmp_path / "none.jsonl"), output_dir=str(tmp_path / "d"))
    with pytest.raises(FileNotFoundError, match="none.jsonl.*check the path"):
        run_preprocess(config)
    assert not (tmp_path / "d").exists()  # checked before anything is written
