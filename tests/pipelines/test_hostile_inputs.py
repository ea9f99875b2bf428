"""Inputs that once aborted `ntr preprocess` or invented an event (the issue-23 probe), run
through the real Beam pipeline: each becomes a dead letter with its kind, file and line, the
counts reconcile, and no Beam temporary folder is left behind."""

import glob
import json

import pytest

from ntr.pipelines.config import PreprocessConfig, SplitConfig
from ntr.pipelines.pipeline import run_preprocess
from tests.conftest import event

SPLIT = SplitConfig(mode="last_events", holdout_events=1, min_train_events=2)
GOOD = [
    json.dumps(event(u, f"i{t}", 1_600_000_000 + t, "like")).encode() for u in ("u1", "u2") for t in range(5)
]

# name -> (the hostile JSONL line, the dead-letter kind it must become)
JSONL = {
    "invalid UTF-8": (
        b'{"user_id": "u\xff", "item_id": "i1", "timestamp": 1600000001, "action": "like"}',
        "bad_encoding",
    ),
    "nested 100k deep": (b"[" * 100_000 + b"]" * 100_000, "malformed_row"),
    "5,000-digit integer": (
        b'{"user_id": "u3", "item_id": "i1", "timestamp": ' + b"9" * 5000 + b', "action": "like"}',
        "malformed_row",
    ),
    "401-digit timestamp": (
        b'{"user_id": "u3", "item_id": "i1", "timestamp": 1' + b"0" * 400 + b', "action": "like"}',
        "bad_timestamp",
    ),
    "timestamp true": (
        b'{"user_id": "u3", "item_id": "i1", "timestamp": true, "action": "like"}',
        "bad_timestamp",
    ),
    "lone surrogate": (
        b'{"user_id": "\\ud800", "item_id": "i1", "timestamp": 1600000001, "action": "like"}',
        "bad_encoding",
    ),
    "huge watch time": (
        b'{"user_id": "u3", "item_id": "i1", "timestamp": 1600000001, "action": "like", "watch_ms": 1'
        + b"0" * 30
        + b"}",
        "bad_number",
    ),
}


def run(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    out = str(tmp_path / "data")
    stats = run_preprocess(PreprocessConfig(events_path=str(path), output_dir=out, max_len=4, split=SPLIT))
    dead = [json.loads(line) for f in glob.glob(f"{out}/dead_letter-*.jsonl") for line in open(f)]
    assert not glob.glob(f"{out}/beam-temp-*") and not glob.glob(f"{out}/*.tmp-*")
    assert stats["reconciled"] and stats["rows_in"] == stats["rows_out"] + stats["rows_dead_letter"]
    return stats, dead


@pytest.mark.parametrize("name", sorted(JSONL))
def test_a_hostile_jsonl_line_becomes_one_dead_letter(tmp_path, name):
    line, kind = JSONL[name]
    stats, dead = run(tmp_path, "events.jsonl", b"\n".join([*GOOD[:5], line, *GOOD[5:]]) + b"\n")
    assert stats["rows_in"] == 11 and stats["rows_out"] == 10
    assert stats["dead_letter"] == {kind: 1}
    [letter] = dead
    assert (letter["kind"], letter["file"], letter["line"]) == (kind, str(tmp_path / "events.jsonl"), 6)


HEADER = b"user_id,item_id,timestamp,action\n"
CSV_GOOD = b"".join(f"u{u},i{t},{1_600_000_000 + t},like\n".encode() for u in (1, 2) for t in range(5))


def test_a_csv_field_over_the_size_limit_becomes_a_dead_letter(tmp_path):
    big = b"u9," + b"x" * 200_000 + b",1600000001,like\n"
    cut = CSV_GOOD.index(b"\n", 30) + 1  # after the second record
    stats, dead = run(tmp_path, "events.csv", HEADER + CSV_GOOD[:cut] + big + CSV_GOOD[cut:])
    assert stats["rows_in"] == 11 and stats["dead_letter"] == {"malformed_row": 1}
    assert dead[0]["line"] == 4 and "field larger" in dead[0]["error"]


def test_a_quoted_newline_stays_inside_its_field(tmp_path):
    """The probe's row: split on the newline, its second half was an event of user `line"`."""
    row = b'"multi\nline",i1,1600000003,like\n'
    stats, dead = run(tmp_path, "events.csv", HEADER + row + CSV_GOOD + b'"bad,quote\n')
    assert stats["rows_in"] == 12 and stats["rows_out"] == 11 and stats["dead_letter"] == {"malformed_row": 1}
    # The unclosed quote at the end is one record from its line to the end of the file.
    assert dead[0]["line"] == 2 + 1 + 1 + CSV_GOOD.count(b"\n")
    assert dead[0]["row"] == '"bad,quote'  # nothing of the multi-line row is in the dead letters


def test_a_failed_run_leaves_no_temporary_folders(tmp_path, monkeypatch):
    from ntr.pipelines import prepare  # noqa: PLC0415

    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(GOOD) + b"\n")
    out = tmp_path / "data"

    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    # A step in the middle of the pipeline fails, after the sinks made their temp folders.
    monkeypatch.setattr(prepare, "prepare_rows", broken)
    with pytest.raises(Exception, match="disk full"):
        run_preprocess(PreprocessConfig(events_path=str(path), output_dir=str(out), max_len=4, split=SPLIT))
    assert not glob.glob(f"{out}/beam-temp-*")
