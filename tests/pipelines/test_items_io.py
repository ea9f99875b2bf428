"""ReadRows, ReadItems and ItemsFromEvents as PTransforms on literal fixture files (items come
in lists, one per item bucket; the tests read them flattened)."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from ntr.pipelines.io import ReadRows, file_format, normalize_item
from ntr.pipelines.items import ItemsFromEvents, ReadItems
from tests.conftest import event, write_jsonl


def test_read_rows_csv_marks_malformed_lines(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text('user_id,item_id,action\nu1,i1,view\n"u2","i,2",like\nbroken line\n')
    with TestPipeline() as p:
        rows = p | ReadRows(str(path))
        good = rows | "Good" >> beam.Filter(lambda r: "_malformed" not in r)
        bad = rows | "Bad" >> beam.Filter(lambda r: "_malformed" in r) | beam.Map(lambda r: r["_malformed"])
        where = {"_file": str(path)}
        expected = [
            {"user_id": "u1", "item_id": "i1", "action": "view", **where, "_line": 2},
            {"user_id": "u2", "item_id": "i,2", "action": "like", **where, "_line": 3},
        ]
        assert_that(good, equal_to(expected), label="Good")
        assert_that(bad, equal_to(["broken line"]), label="Bad")


def test_read_items_normalises_and_dead_letters(tmp_path):
    path = write_jsonl(
        tmp_path / "items.jsonl",
        [
            {"item_id": "a", "creator_id": "c1", "categories": "x|y", "duration_ms": "1000.0", "text": "t"},
            {"item_id": "b", "categories": '["z"]'},
            {"item_id": "b", "categories": ["other"]},  # duplicate id
            {"creator_id": "c9"},  # no id
        ],
    )
    with TestPipeline() as p:
        item_lists, dead = p | ReadItems(path, num_buckets=3)
        items = item_lists | "Flat" >> beam.FlatMap(lambda lst: lst)
        assert_that(
            items,
            equal_to(
                [
                    {
                        "item_id": "a",
                        "creator_id": "c1",
                        "categories": ["x", "y"],
                        "duration_ms": 1000,
                        "text": "t",
                    },
                    {
                        "item_id": "b",
                        "creator_id": "",
                        "categories": ["other"],
                        "duration_ms": None,
                        "text": "",
                    },
                ]
            ),
            label="Items",
        )
        assert_that(
            dead | beam.Map(lambda d: d["kind"]), equal_to(["duplicate_item", "bad_item"]), label="Dead"
        )


def test_items_from_events():
    lists = [
        [event("u", "a", 1, duration=5000), event("u", "a", 2, duration=7000), event("u", "b", 3)],
        [event("v", "a", 4, duration=6000), event("v", "b", 5)],
    ]
    with TestPipeline() as p:
        item_lists = p | beam.Create(lists) | ItemsFromEvents(num_buckets=3)
        assert_that(
            item_lists | beam.FlatMap(lambda lst: lst),
            equal_to(
                [
                    {"item_id": "a", "creator_id": "", "categories": [], "duration_ms": 7000, "text": ""},
                    {"item_id": "b", "creator_id": "", "categories": [], "duration_ms": None, "text": ""},
                ]
            ),
        )


def test_formats_and_item_errors():
    assert file_format("x/events-*.jsonl.gz") == "jsonl" and file_format("e.parquet") == "parquet"
    with pytest.raises(ValueError, match=".jsonl, .csv or .parquet"):
        file_format("events.txt")
    with pytest.raises(ValueError, match="without item_id"):
        normalize_item({"text": "x"})


def test_byte_ranges_give_every_line_once(tmp_path):
    import gzip  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from ntr.pipelines.io import file_ranges, range_lines, range_records  # noqa: PLC0415

    rng = np.random.default_rng(0)
    lines = ["header"] + ["x" * int(n) for n in rng.integers(0, 40, 300)] + ["last without newline"]
    text = "\n".join(lines)
    (tmp_path / "a.csv").write_text(text)
    (tmp_path / "b.csv").write_text("header\r\nonly\r\n")
    with gzip.open(tmp_path / "c.csv.gz", "wt") as handle:
        handle.write(text)
    for size in (1, 7, 64, 10_000):
        ranges = file_ranges(str(tmp_path / "*.csv*"), range_bytes=size)
        assert [r for r in ranges if r[0].endswith(".gz")] == [(str(tmp_path / "c.csv.gz"), 0, -1, 1)]
        got = [line for r in ranges for line in range_lines(r, skip_header_lines=1)]
        assert got == lines[1:] + ["only"] + lines[1:], size
        # Each range knows the line it starts at.
        numbers = [n for r in ranges for n, _ in range_records(r, skip_header_lines=1)]
        assert numbers == [*range(2, len(lines) + 1), 2, *range(2, len(lines) + 1)], size
