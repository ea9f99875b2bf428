"""Property-based tests (Hypothesis) of the readers and validators: for any bytes, reading
never raises, every record comes out exactly once whatever the byte-range size, and
`rows_in == rows_out + rows_dead_letter`; CSV written by a real CSV writer reads back exactly."""

import csv
import io
import os
import tempfile

import hypothesis
import hypothesis.strategies as st

from ntr.pipelines.config import PreprocessConfig
from ntr.pipelines.io import file_ranges, parse_records, range_records
from ntr.pipelines.prepare import prepare_rows
from ntr.pipelines.validate import InvalidRow, parse_event

SETTINGS = hypothesis.settings(max_examples=150, deadline=None, database=None, derandomize=True)
CONFIG = PreprocessConfig(events_path="unused.jsonl", output_dir="unused")
HEADER = ["user_id", "item_id", "timestamp", "action", "reason"]
# Bytes that matter to the readers, so random data hits quotes, newlines and separators often.
interesting = st.lists(
    st.one_of(
        st.sampled_from([b"\n", b"\r\n", b'"', b",", b"{", b"}", b"\xff", b"\\ud800", b" "]),
        st.binary(max_size=8),
    ),
    max_size=60,
).map(b"".join)


def write(data: bytes, suffix: str) -> str:
    handle, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(handle, "wb") as f:
        f.write(data)
    return path


def records(path: str, range_bytes: int, quoted: bool) -> list:
    ranges = file_ranges(path, range_bytes=range_bytes, quoted=quoted)
    return [r for file_range in ranges for r in range_records(file_range, int(quoted), quoted)]


@SETTINGS
@hypothesis.given(data=interesting, range_bytes=st.integers(1, 40), fmt=st.sampled_from([".jsonl", ".csv"]))
def test_any_bytes_read_the_same_whatever_the_ranges_and_reconcile(data, range_bytes, fmt):
    quoted = fmt == ".csv"
    path = write((",".join(HEADER) + "\n").encode() + data if quoted else data, fmt)
    try:
        whole = records(path, 1 << 20, quoted)
        assert records(path, range_bytes, quoted) == whole
        header = HEADER if quoted else None
        rows = [
            row
            for r in file_ranges(path, range_bytes=range_bytes, quoted=quoted)
            for row in parse_records(r, header)
        ]
        by_user, dead, counts = prepare_rows(rows, CONFIG)
        events = sum(len(v) for v in by_user.values())
        assert counts["rows_in"] == len(rows) == events + counts["rows_dead_letter"] == events + len(dead)
        assert all(d["file"] == path and d["line"] >= 1 for d in dead)
    finally:
        os.remove(path)


field = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@SETTINGS
@hypothesis.given(
    rows=st.lists(
        st.tuples(field, field, st.integers(1, 4_000_000_000), field, field), min_size=1, max_size=15
    ),
    range_bytes=st.integers(1, 64),
)
def test_csv_from_a_real_writer_reads_back_exactly(rows, range_bytes):
    buffer = io.StringIO(newline="")
    # Python's writer quotes only the characters of its line terminator: with "\r\n" both.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    path = write(buffer.getvalue().encode("utf-8"), ".csv")
    try:
        got = [
            row
            for r in file_ranges(path, range_bytes=range_bytes, quoted=True)
            for row in parse_records(r, HEADER)
        ]
        assert [tuple(row[c] for c in HEADER) for row in got] == [tuple(map(str, r)) for r in rows]
    finally:
        os.remove(path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@SETTINGS
@hypothesis.given(
    row=st.dictionaries(st.sampled_from([*HEADER, "watch_ms", "duration_ms", "x"]), json_values)
)
def test_parse_event_accepts_or_raises_invalid_row_only(row):
    try:
        event = parse_event(row)
    except InvalidRow:
        return
    assert isinstance(event["timestamp"], int) and not isinstance(event["timestamp"], bool)
    for name in ("user_id", "item_id"):
        event[name].encode("utf-8")
