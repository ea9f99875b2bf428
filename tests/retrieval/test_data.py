"""TFRecord round trip: pipeline writes -> tf.data reads the same events in the same order."""

import json
import os

import numpy as np
import pytest

from ntr.pipelines.config import PreprocessConfig, SplitConfig
from ntr.pipelines.events import Label
from ntr.pipelines.pipeline import run_preprocess
from ntr.retrieval.data import (
    NUM_RESERVED,
    PAD_ID,
    load_items,
    load_vocab,
    read_histories,
    sequence_dataset,
    window_share,
)
from tests.conftest import TINY_WINDOW, event, write_jsonl

ITEMS = [
    {"item_id": f"i{k}", "creator_id": "c", "categories": ["x"], "duration_ms": 9000, "text": ""}
    for k in range(5)
]


def test_round_trip(tmp_path):
    rows = [
        event("u1", "i3", 1_600_000_005, "like"),
        event("u1", "i1", 1_600_000_001, "view", watch=1000, duration=9000),  # a skip
        event("u1", "i2", 1_600_000_003, "dislike", reason="quality"),
        event("u1", "i4", 1_600_000_004, "hide_creator"),
        event("u1", "i0", 1_600_000_000, "view"),
        event("u2", "i2", 1_600_000_000, "complete", watch=9000, duration=9000),
        event("u2", "i0", 1_600_000_009, "share"),
    ]
    config = PreprocessConfig(
        events_path=write_jsonl(tmp_path / "e.jsonl", rows),
        items_path=write_jsonl(tmp_path / "i.jsonl", ITEMS),
        output_dir=str(tmp_path / "data"),
        split=SplitConfig(holdout_events=1, min_train_events=100),  # everything stays in train
        max_len=8,
    )
    run_preprocess(config)
    batches = list(sequence_dataset(config.output_dir, "train", batch_size=4, max_len=8, keep_strings=True))
    assert len(batches) == 1
    batch = {k: v.numpy() for k, v in batches[0].items()}
    order = np.argsort(batch["user_id"])
    assert [batch["user_id"][i].decode() for i in order] == ["u1", "u2"]
    u1, u2 = order
    n = batch["mask"][u1].sum()
    assert n == 5 and batch["mask"][u2].sum() == 2
    assert [x.decode() for x in batch["item_id"][u1][:n]] == ["i0", "i1", "i2", "i4", "i3"]
    assert [x.decode() for x in batch["action_name"][u1][:n]] == [
        "view",
        "skip",
        "dislike",
        "hide_creator",
        "like",
    ]
    assert [x.decode() for x in batch["reason_name"][u1][:n]] == ["", "", "quality", "creator", ""]
    neg = Label.EXPLICIT_NEGATIVE
    assert batch["label"][u1][:n].tolist() == [
        Label.NEUTRAL,
        Label.IMPLICIT_NEGATIVE,
        neg,
        neg,
        Label.POSITIVE,
    ]
    assert batch["timestamp"][u1][:n].tolist() == [
        1_600_000_000,
        1_600_000_001,
        1_600_000_003,
        1_600_000_004,
        1_600_000_005,
    ]
    assert batch["watch_ms"][u1][:n].tolist() == [-1, 1000, -1, -1, -1]
    assert batch["is_target"][u1].tolist() == [0, 1, 1, 1, 1, 0, 0, 0]
    # Ids follow the vocab convention, and padding is padding.
    vocab = load_vocab(config.output_dir, "items")
    assert batch["item"][u1][:n].tolist() == [vocab.index(f"i{k}") + NUM_RESERVED for k in (0, 1, 2, 4, 3)]
    assert (batch["item"][u1][n:] == PAD_ID).all() and (batch["label"][u1][n:] == -1).all()
    reasons = load_vocab(config.output_dir, "reasons")
    assert (
        batch["reason"][u1][2] == reasons.index("quality") + NUM_RESERVED and batch["reason"][u1][0] == PAD_ID
    )
    assert load_items(config.output_dir)[0] == ITEMS[0]


def test_logging_columns_reach_the_test_split_and_a_log_without_them_reads_as_unknown(tmp_path):
    rows = [
        event("u1", "i0", 1_600_000_000, "like", is_random=False, propensity=0.5),
        event("u1", "i1", 1_600_000_001, "view", watch=1000, duration=9000, is_random=True, propensity=0.002),
        event("u1", "i2", 1_600_000_002, "complete"),  # this row's logger said nothing
        event("u2", "i3", 1_600_000_000, "like"),
        event("u2", "i4", 1_600_000_001, "share"),
        event("u2", "i0", 1_600_000_002, "share"),
    ]
    config = PreprocessConfig(
        events_path=write_jsonl(tmp_path / "e.jsonl", rows),
        items_path=write_jsonl(tmp_path / "i.jsonl", ITEMS),
        output_dir=str(tmp_path / "data"),
        split=SplitConfig(mode="last_events", holdout_events=1, min_train_events=1),
        max_len=8,
    )
    run_preprocess(config)
    assert "is_random" not in read_histories(config.output_dir, "test")[0][0]  # what the service gets
    test = sorted(read_histories(config.output_dir, "test", logging=True), key=lambda h: h[0]["item_id"])
    logged = [[(e["item_id"], e["is_random"], e["propensity"]) for e in h] for h in test]
    # float32 in the TFRecord: 0.002 comes back as the nearest float32.
    assert logged == [
        [("i0", False, 0.5), ("i1", True, float(np.float32(0.002))), ("i2", None, None)],
        [("i3", None, None), ("i4", None, None), ("i0", None, None)],
    ]
    with_targets = sorted(
        read_histories(config.output_dir, "test", targets=True), key=lambda h: h[0]["item_id"]
    )
    assert [[e["is_target"] for e in h] for h in with_targets] == [[False, False, True], [False, False, True]]
    assert [e["label"] for e in with_targets[0]] == ["POSITIVE", "IMPLICIT_NEGATIVE", "POSITIVE"]
    with open(os.path.join(config.output_dir, "stats.json"), encoding="utf-8") as handle:
        stats = json.load(handle)
    assert stats["logging"] == {"random": {"valid": 1}, "propensity": 2}  # i1 is u1's valid target


def _valid_users(data_dir, share):
    batches = sequence_dataset(data_dir, "valid", batch_size=16, max_len=TINY_WINDOW, share=share)
    return [user.decode() for batch in batches for user in batch["user_id"].numpy()]


def test_window_share_keeps_a_fixed_user_sample(tiny_data):
    share, rows = window_share(tiny_data, "valid", 0)
    everyone = _valid_users(tiny_data, 1.0)
    assert share == 1.0 and len(everyone) == rows == len(set(everyone)) > 40
    assert window_share(tiny_data, "valid", rows) == (1.0, rows)
    half, _ = window_share(tiny_data, "valid", rows // 2)
    assert half == (rows // 2) / rows
    sample = _valid_users(tiny_data, half)
    # The same windows on every read (an epoch's validation is comparable with the last one's),
    # a true subset of the split, nested under a smaller share, and near the asked-for size.
    assert _valid_users(tiny_data, half) == sample
    assert set(sample) < set(everyone)
    assert set(_valid_users(tiny_data, half / 2)) <= set(sample)
    assert abs(len(sample) - half * rows) <= 4 * np.sqrt(rows * half * (1 - half))
    with pytest.raises(ValueError, match=r"max_windows must be >= 0"):
        window_share(tiny_data, "valid", -1)
    with pytest.raises(ValueError, match=r"share must be in \(0, 1\]"):
        sequence_dataset(tiny_data, "valid", batch_size=16, max_len=TINY_WINDOW, share=0.0)
